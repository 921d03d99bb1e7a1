package dubbo

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// benchDecode decodes the named golden frame over and over with one codec
// and one message, as a proxy connection does.
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

// BenchmarkDecodeRequest: a sayHello call with version, group, timeout
// and a request id, tenant and trace context in its attachments.
func BenchmarkDecodeRequest(b *testing.B) { benchDecode(b, "lib_req_typical") }

// BenchmarkDecodeRequestAttachments: a 1500-character attachment and a
// non-BMP one, which costs a copy.
func BenchmarkDecodeRequestAttachments(b *testing.B) { benchDecode(b, "lib_req_attachments") }

// BenchmarkDecodeRequestObjects: ten arguments, nested objects among them.
func BenchmarkDecodeRequestObjects(b *testing.B) { benchDecode(b, "lib_req_objects") }

// BenchmarkDecodeResponse: an object result with attachments.
func BenchmarkDecodeResponse(b *testing.B) { benchDecode(b, "lib_rsp_object_attachments") }

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
// upstream needs.
func BenchmarkEncodeWithEdit(b *testing.B) {
	benchEncode(b, "lib_req_typical", &codec.Edit{SetID: true, ID: 77})
}

// BenchmarkEncodeWithHeaders: an id rewrite plus two attachment edits,
// one replacing a value, one adding a key.
func BenchmarkEncodeWithHeaders(b *testing.B) {
	benchEncode(b, "lib_req_typical", &codec.Edit{SetID: true, ID: 77,
		Headers: []codec.KV{{Key: "foo", Value: "baz"}, {Key: "x-new", Value: "v"}}})
}
