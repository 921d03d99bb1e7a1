package declarative

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
	"github.com/metaproxy/metaproxy/codecs/trpc"
)

func nativeTRPC(tb testing.TB) codec.Factory {
	tb.Helper()
	f, err := trpc.NewFactory(trpc.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// TestTRPCGoldens decodes every golden frame captured between trpc-go
// peers with examples/trpc.yaml and with the native codec: unary frames
// give the same kind, id, status and metadata; stream frames, which the
// description does not cover, are refused.
func TestTRPCGoldens(t *testing.T) {
	decl, native := loadExample(t, "trpc.yaml"), nativeTRPC(t)
	unary := 0
	for _, g := range trpcGoldens(t) {
		t.Run(g.Name, func(t *testing.T) {
			if g.stream() {
				if _, err := decl.NewCodec().Split(g.Frame); err == nil {
					t.Fatal("a stream frame was not refused")
				}
				return
			}
			unary++
			want, got := decode(t, native, g.Frame), decode(t, decl, g.Frame)
			if got.Kind != want.Kind || got.ID != want.ID || got.Status != want.Status {
				t.Errorf("kind/id/status %v/%d/%v, native %v/%d/%v", got.Kind, got.ID, got.Status, want.Kind, want.ID, want.Status)
			}
			if gm, wm := metaMap(got), metaMap(want); !maps.Equal(gm, wm) {
				t.Errorf("metadata %v, native %v", gm, wm)
			}
		})
	}
	if unary < 10 {
		t.Fatalf("only %d unary goldens", unary)
	}
}

// TestTRPCErrorReplyMatchesNative: the description's error reply is the
// native codec's, byte for byte, for every request and error type, and
// a trpc-go ResponseProtocol with the request's id and the ret code.
func TestTRPCErrorReplyMatchesNative(t *testing.T) {
	decl, native := loadExample(t, "trpc.yaml"), nativeTRPC(t)
	for _, g := range trpcGoldens(t) {
		if g.stream() || !g.fromClient() {
			continue
		}
		m := decode(t, decl, g.Frame)
		for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
			e := &codec.Error{Type: et, Message: "no route for " + g.Name}
			got := decl.NewCodec().ErrorReply(nil, m, e)
			want := native.NewCodec().ErrorReply(nil, decode(t, native, g.Frame), e)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s %v:\n got % x\nwant % x", g.Name, et, got, want)
			}
			if m.Kind != codec.KindRequest {
				continue
			}
			rsp := &trpcpb.ResponseProtocol{}
			if err := proto.Unmarshal(got[16:16+int(binary.BigEndian.Uint16(got[8:10]))], rsp); err != nil {
				t.Fatal(err)
			}
			if uint64(rsp.RequestId) != m.ID || rsp.Ret != trpc.CodeFor(et) || string(rsp.ErrorMsg) != e.Error() {
				t.Errorf("%s %v: reply %v", g.Name, et, rsp)
			}
		}
	}
}

// TestTRPCRewriteIDMatchesNative: id rewrites of every varint size give
// the native codec's bytes (in place, or the header rewritten and both
// lengths fixed; the head's stream id follows when it held the id).
func TestTRPCRewriteIDMatchesNative(t *testing.T) {
	decl, native := loadExample(t, "trpc.yaml"), nativeTRPC(t)
	for _, g := range trpcGoldens(t) {
		if g.stream() {
			continue
		}
		for _, id := range []uint64{0, 1, 7, 127, 128, 300, 1 << 20, math.MaxUint32} {
			e := &codec.Edit{SetID: true, ID: id}
			got, err := decl.NewCodec().Encode(nil, decode(t, decl, g.Frame), e)
			if err != nil {
				t.Fatal(err)
			}
			want, err := native.NewCodec().Encode(nil, decode(t, native, g.Frame), e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s id %d:\n got % x\nwant % x", g.Name, id, got, want)
			}
		}
		if _, err := decl.NewCodec().Encode(nil, decode(t, decl, g.Frame), &codec.Edit{SetID: true, ID: 1 << 32}); err == nil {
			t.Errorf("%s: an id over 32 bits was accepted", g.Name)
		}
	}
}

// TestTRPCHeaderEditsReadByProtobuf: trans_info edits, read back by the
// generated types, are the native codec's.
func TestTRPCHeaderEditsReadByProtobuf(t *testing.T) {
	decl, native := loadExample(t, "trpc.yaml"), nativeTRPC(t)
	e := &codec.Edit{SetID: true, ID: 1 << 21, Headers: []codec.KV{{Key: "x-route", Value: "p3"}, {Key: "x-new", Value: "v"}, {Key: "x-new", Value: "later"}}}
	for _, g := range trpcGoldens(t) {
		if g.stream() {
			continue
		}
		m := decode(t, decl, g.Frame)
		got, err := decl.NewCodec().Encode(nil, m, e)
		if err != nil {
			t.Fatal(err)
		}
		want, err := native.NewCodec().Encode(nil, decode(t, native, g.Frame), e)
		if err != nil {
			t.Fatal(err)
		}
		a, b := readTRPC(t, got, m.Kind != codec.KindResponse), readTRPC(t, want, m.Kind != codec.KindResponse)
		if a != b {
			t.Errorf("%s:\n got %s\nwant %s", g.Name, a, b)
		}
		if !bytes.Equal(got[len(got)-len(trpcBody(g.Frame)):], trpcBody(g.Frame)) {
			t.Errorf("%s: body changed", g.Name)
		}
	}
}

// readTRPC renders a unary frame as the generated types read it.
func readTRPC(t *testing.T, f []byte, request bool) string {
	t.Helper()
	if int(binary.BigEndian.Uint32(f[4:8])) != len(f) {
		t.Fatalf("total length %d in a %d-byte frame", binary.BigEndian.Uint32(f[4:8]), len(f))
	}
	hb := f[16 : 16+int(binary.BigEndian.Uint16(f[8:10]))]
	var msg proto.Message = &trpcpb.ResponseProtocol{}
	if request {
		msg = &trpcpb.RequestProtocol{}
	}
	if err := proto.Unmarshal(hb, msg); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("stream %d: %v", binary.BigEndian.Uint32(f[10:14]), msg)
}

// trpcBody is a unary frame's body and attachment.
func trpcBody(f []byte) []byte { return f[16+int(binary.BigEndian.Uint16(f[8:10])):] }

func TestTRPCConformance(t *testing.T) {
	var reqs, rsps [][]byte
	for _, g := range trpcGoldens(t) {
		switch {
		case g.stream():
		case g.fromClient():
			reqs = append(reqs, g.Frame)
		default:
			rsps = append(rsps, g.Frame)
		}
	}
	codectest.Run(t, codectest.Suite{
		Factory:   loadExample(t, "trpc.yaml"),
		Requests:  reqs,
		Responses: rsps,
		Garbage:   trpcGarbage,
		Body:      func(f []byte) ([]byte, error) { return trpcBody(f), nil },
	})
}

var trpcGarbage = [][]byte{
	[]byte("GET / HTTP/1.1\r\n\r\n"),
	{0x09, 0x31},
	{0x09, 0x30, 0x01, 0x01, 0, 0, 0, 16, 0, 0, 0, 0, 0, 100, 0, 0}, // a stream frame
	{0x09, 0x30, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 1, 1, 0},          // total length below the head
	{0x09, 0x30, 0, 0, 0, 0, 0, 20, 0, 8, 0, 0, 0, 1, 1, 0, 1, 2, 3, 4},
	{0x09, 0x30, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 1, 0},
	{0x09, 0x30, 0, 0, 0, 0, 0, 19, 0, 3, 0, 0, 0, 1, 1, 0, 0x1a, 0x05, 0x01}, // truncated field
}
