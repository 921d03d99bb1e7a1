package trpc

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"

	"github.com/metaproxy/metaproxy/codec"
)

// golden is a frame from testdata: captured between a real trpc-go v1.1.0
// client and server by test/peers/trpc (go run . -mode capture -out
// ../../../codecs/trpc/testdata), with its meaning as trpc-protocol's
// generated types read it.
type golden struct {
	Name   string `json:"-"`
	Origin string `json:"origin"`
	Hex    string `json:"frame"`
	Frame  []byte `json:"-"`
	Want   struct {
		Kind     string            `json:"kind"`
		ID       uint64            `json:"id"`
		StreamID uint64            `json:"stream_id"`
		Status   string            `json:"status"`
		Meta     map[string]string `json:"meta"`
	} `json:"want"`
}

// loadGoldens reads testdata/*.json, failing the test if there are none.
func loadGoldens(tb testing.TB) []golden {
	tb.Helper()
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no golden frames in testdata: %v", err)
	}
	gs := make([]golden, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(b, &g); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		if g.Frame, err = hex.DecodeString(g.Hex); err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		g.Name = strings.TrimSuffix(filepath.Base(f), ".json")
		gs = append(gs, g)
	}
	return gs
}

// goldenFrame returns the frame of the named golden.
func goldenFrame(tb testing.TB, name string) []byte {
	tb.Helper()
	for _, g := range loadGoldens(tb) {
		if g.Name == name {
			return g.Frame
		}
	}
	tb.Fatalf("no golden %q", name)
	return nil
}

// fromClient reports whether a golden frame travelled client to server.
func (g *golden) fromClient() bool { return strings.Contains(g.Origin, " client,") }

// stream reports whether a golden is a stream frame.
func (g *golden) stream() bool { return g.Frame[2] == frameStream }

func newTestCodec(tb testing.TB) *Codec {
	tb.Helper()
	f, err := NewFactory(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return f.NewCodec().(*Codec)
}

// decodeFrame splits and decodes one whole frame with a fresh codec.
func decodeFrame(tb testing.TB, frame []byte) *codec.Message {
	tb.Helper()
	c := newTestCodec(tb)
	if n, err := c.Split(frame); err != nil || n != len(frame) {
		tb.Fatalf("split: n=%d of %d, err=%v", n, len(frame), err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		tb.Fatalf("decode: %v", err)
	}
	return m
}

// libFrame is a unary frame as trpc-protocol's generated types read it.
type libFrame struct {
	streamID uint32
	version  byte
	req      *trpcpb.RequestProtocol  // request frames
	rsp      *trpcpb.ResponseProtocol // response frames
	body     []byte
	att      []byte
}

// libDecode reads unary frame f as trpc-go does (ServerCodec.Decode for a
// request, ClientCodec.Decode for a response), checking its lengths.
func libDecode(f []byte, request bool) (*libFrame, error) {
	if len(f) < HeadLen || binary.BigEndian.Uint32(f[4:8]) != uint32(len(f)) {
		return nil, fmt.Errorf("total length does not match the frame")
	}
	end := HeadLen + int(binary.BigEndian.Uint16(f[8:10]))
	if end > len(f) {
		return nil, fmt.Errorf("header length beyond the frame")
	}
	l := &libFrame{streamID: binary.BigEndian.Uint32(f[10:14]), version: f[14]}
	var att uint32
	if request {
		l.req = &trpcpb.RequestProtocol{}
		if err := proto.Unmarshal(f[HeadLen:end], l.req); err != nil {
			return nil, err
		}
		att = l.req.AttachmentSize
	} else {
		l.rsp = &trpcpb.ResponseProtocol{}
		if err := proto.Unmarshal(f[HeadLen:end], l.rsp); err != nil {
			return nil, err
		}
		att = l.rsp.AttachmentSize
	}
	if int(att) > len(f)-end {
		return nil, fmt.Errorf("attachment beyond the frame")
	}
	l.body, l.att = f[end:len(f)-int(att)], f[len(f)-int(att):]
	return l, nil
}

// libBody returns a unary frame's body and attachment, or a stream
// frame's body, for codectest's body comparisons.
func libBody(f []byte) ([]byte, error) {
	if len(f) >= HeadLen && f[2] == frameStream {
		return f[HeadLen:], nil
	}
	// A request header names its func; the generated types cannot tell.
	var h unaryHeader
	if err := h.parse(f[HeadLen:min(len(f), HeadLen+int(binary.BigEndian.Uint16(f[8:10])))]); err != nil {
		return nil, err
	}
	l, err := libDecode(f, h.request)
	if err != nil {
		return nil, err
	}
	return append(append([]byte(nil), l.body...), l.att...), nil
}
