package trpc

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// benchDecode splits and decodes the named golden frame over and over with
// one codec and one message, as a proxy connection does.
func benchDecode(b *testing.B, name string) {
	frame := goldenFrame(b, name)
	c := newTestCodec(b)
	var m codec.Message
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		m.Frame = frame
		if n, err := c.Split(frame); err != nil || n != len(frame) {
			b.Fatal(n, err)
		}
		if err := c.Decode(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeRequest: a trpc-go SayHi call with caller, callee, func,
// timeout and four trans_info entries.
func BenchmarkDecodeRequest(b *testing.B) { benchDecode(b, "req_trans_info") }

// BenchmarkDecodeRequestPlain: a call without trans_info.
func BenchmarkDecodeRequestPlain(b *testing.B) { benchDecode(b, "req_hello") }

// BenchmarkDecodeResponse: a response with one trans_info entry.
func BenchmarkDecodeResponse(b *testing.B) { benchDecode(b, "rsp_hello") }

func benchEncode(b *testing.B, name string, e *codec.Edit) {
	frame := goldenFrame(b, name)
	c := newTestCodec(b)
	m := decodeFrame(b, frame)
	dst := make([]byte, 0, 2*len(frame))
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = c.Encode(dst[:0], m, e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeWithEdit: the request id rewrite every multiplexed
// upstream needs; the id keeps its varint size and is patched in place.
func BenchmarkEncodeWithEdit(b *testing.B) {
	benchEncode(b, "req_trans_info", &codec.Edit{SetID: true, ID: 77})
}

// BenchmarkEncodeWithEditGrowing: an id rewrite from a one-byte to a
// three-byte varint: the header is rewritten and the lengths fixed.
func BenchmarkEncodeWithEditGrowing(b *testing.B) {
	benchEncode(b, "req_trans_info", &codec.Edit{SetID: true, ID: 1 << 20})
}

// BenchmarkEncodeWithHeaders: an id rewrite plus two trans_info edits,
// one replacing an entry, one adding a key.
func BenchmarkEncodeWithHeaders(b *testing.B) {
	benchEncode(b, "req_trans_info", &codec.Edit{SetID: true, ID: 77,
		Headers: []codec.KV{{Key: "x-route", Value: "p3"}, {Key: "x-new", Value: "v"}}})
}
