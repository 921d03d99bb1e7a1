package trpc

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	trpcpb "trpc.group/trpc/trpc-protocol/pb/go/trpc"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// encode applies e to frame f with a fresh codec.
func encode(t *testing.T, f []byte, e *codec.Edit) ([]byte, error) {
	t.Helper()
	return newTestCodec(t).Encode(nil, decodeFrame(t, f), e)
}

// mustLib reads unary frame f with the generated types.
func mustLib(t *testing.T, f []byte, request bool) *libFrame {
	t.Helper()
	l, err := libDecode(f, request)
	if err != nil {
		t.Fatalf("generated types refuse the frame % x: %v", f, err)
	}
	return l
}

// sameExcept checks that edited frame b differs from a only as change
// says: the two headers, once change has been applied to a's, are equal,
// and the bodies and attachments are the same bytes.
func sameExcept(t *testing.T, a, b *libFrame, change func(req *trpcpb.RequestProtocol, rsp *trpcpb.ResponseProtocol)) {
	t.Helper()
	if a.req != nil {
		change(a.req, nil)
		if !proto.Equal(a.req, b.req) {
			t.Errorf("request header after the edit:\n %v\nwant\n %v", b.req, a.req)
		}
	} else {
		change(nil, a.rsp)
		if !proto.Equal(a.rsp, b.rsp) {
			t.Errorf("response header after the edit:\n %v\nwant\n %v", b.rsp, a.rsp)
		}
	}
	if !bytes.Equal(a.body, b.body) || !bytes.Equal(a.att, b.att) {
		t.Errorf("body or attachment changed")
	}
	if a.version != b.version {
		t.Errorf("head version %d became %d", a.version, b.version)
	}
}

// TestRewriteIDVarintSizes: request ids of every varint size replace ids
// of every other size, in requests and responses (attachments included);
// the generated types read the new id and everything else unchanged, and
// the head's stream id follows the request id it held.
func TestRewriteIDVarintSizes(t *testing.T) {
	ids := []uint64{0, 5, 127, 128, 300, 1 << 21, 1 << 28, math.MaxUint32}
	for _, name := range []string{"req_hello", "req_id_2byte", "req_attachment", "rsp_attachment", "rsp_no_func"} {
		orig := goldenFrame(t, name)
		request := strings.HasPrefix(name, "req")
		for _, id := range ids {
			out, err := encode(t, orig, &codec.Edit{SetID: true, ID: id})
			if err != nil {
				t.Fatalf("%s id %d: %v", name, id, err)
			}
			a, b := mustLib(t, orig, request), mustLib(t, out, request)
			sameExcept(t, a, b, func(req *trpcpb.RequestProtocol, rsp *trpcpb.ResponseProtocol) {
				if req != nil {
					req.RequestId = uint32(id)
				} else {
					rsp.RequestId = uint32(id)
				}
			})
			if b.streamID != uint32(id) {
				t.Errorf("%s id %d: head stream id %d", name, id, b.streamID)
			}
			if m := decodeFrame(t, out); m.ID != id {
				t.Errorf("%s: decoded id %d, want %d", name, m.ID, id)
			}
		}
	}
}

// TestRewriteIDKeepsOtherStreamID: a head whose stream id is not the
// request id (a version 0 head with 0) keeps it.
func TestRewriteIDKeepsOtherStreamID(t *testing.T) {
	f := unaryFrame(appendVarintField(pbwire.AppendBytesField(nil, reqFunc, "/a/b"), fieldRequestID, 9), nil)
	out, err := encode(t, f, &codec.Edit{SetID: true, ID: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if l := mustLib(t, out, true); l.streamID != 0 || l.req.RequestId != 1000 {
		t.Errorf("stream id %d, request id %d", l.streamID, l.req.RequestId)
	}
}

// TestRewriteIDDuplicates: a header with two request_id fields (the last
// wins) and none at all are both rewritten to exactly one.
func TestRewriteIDDuplicates(t *testing.T) {
	fn := pbwire.AppendBytesField(nil, reqFunc, "/a/b")
	for _, hb := range [][]byte{
		appendVarintField(appendVarintField(fn, fieldRequestID, 1), fieldRequestID, 2),
		fn,
	} {
		out, err := encode(t, unaryFrame(hb, []byte("body")), &codec.Edit{SetID: true, ID: 77})
		if err != nil {
			t.Fatal(err)
		}
		if n, at, _, _, err := scanID(out[HeadLen : len(out)-4]); n != 1 || at == 0 || err != nil {
			t.Errorf("header % x: not one request_id", out[HeadLen:])
		}
		if l := mustLib(t, out, true); l.req.RequestId != 77 || string(l.body) != "body" {
			t.Errorf("id %d body %q", l.req.RequestId, l.body)
		}
	}
}

// TestTransInfoEdits: trans_info entries are replaced and added, in
// requests and responses, together with an id rewrite; the generated types
// read exactly the expected map and everything else unchanged.
func TestTransInfoEdits(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit []codec.KV
	}{
		{"req_trans_info", []codec.KV{{Key: "x-route", Value: "p3"}, {Key: "x-new", Value: "ü"}, {Key: "x-empty", Value: "now"}}},
		{"req_hello", []codec.KV{{Key: "x-a", Value: "1"}, {Key: "x-a", Value: "2"}}}, // the later wins
		{"req_attachment", []codec.KV{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}},
		{"req_oneway", []codec.KV{{Key: "X-Route", Value: "exact keys"}}},
		{"rsp_hello", []codec.KV{{Key: "x-served-by", Value: "proxy"}, {Key: "x-extra", Value: ""}}},
		{"rsp_func_error", []codec.KV{{Key: "k", Value: "v"}}},
	} {
		orig := goldenFrame(t, tc.name)
		request := strings.HasPrefix(tc.name, "req")
		out, err := encode(t, orig, &codec.Edit{SetID: true, ID: 4000, Headers: tc.edit})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		a, b := mustLib(t, orig, request), mustLib(t, out, request)
		sameExcept(t, a, b, func(req *trpcpb.RequestProtocol, rsp *trpcpb.ResponseProtocol) {
			ti := map[string][]byte{}
			if req != nil {
				req.RequestId, ti = 4000, req.TransInfo
				if ti == nil {
					ti = map[string][]byte{}
					req.TransInfo = ti
				}
			} else {
				rsp.RequestId, ti = 4000, rsp.TransInfo
				if ti == nil {
					ti = map[string][]byte{}
					rsp.TransInfo = ti
				}
			}
			for _, kv := range tc.edit {
				ti[kv.Key] = []byte(kv.Value)
			}
		})
		m := decodeFrame(t, out)
		for _, kv := range tc.edit[len(tc.edit)-1:] {
			if m.Meta.Value(kv.Key) != kv.Value {
				t.Errorf("%s: decoded %s = %q", tc.name, kv.Key, m.Meta.Value(kv.Key))
			}
		}
	}
}

// TestTransInfoReplacesDuplicates: every entry of an edited key goes, one
// new entry takes the place of the first.
func TestTransInfoReplacesDuplicates(t *testing.T) {
	hb := pbwire.AppendBytesField(nil, reqFunc, "/a/b")
	hb = pbwire.AppendEntry(hb, reqTransInfo, "k", "1")
	hb = pbwire.AppendEntry(hb, reqTransInfo, "other", "x")
	hb = pbwire.AppendEntry(hb, reqTransInfo, "k", "2")
	out, err := encode(t, unaryFrame(hb, nil), &codec.Edit{Headers: []codec.KV{{Key: "k", Value: "new"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := pbwire.AppendBytesField(nil, reqFunc, "/a/b")
	want = pbwire.AppendEntry(want, reqTransInfo, "k", "new")
	want = pbwire.AppendEntry(want, reqTransInfo, "other", "x")
	if got := out[HeadLen:]; !bytes.Equal(got, want) {
		t.Errorf("header % x, want % x", got, want)
	}
}

// TestEditErrors: what an edit cannot do fails, leaving dst as it was.
func TestEditErrors(t *testing.T) {
	req := goldenFrame(t, "req_hello")
	big := strings.Repeat("v", 70000)
	for _, tc := range []struct {
		name  string
		frame []byte
		edit  codec.Edit
		max   int
		unsup bool
	}{
		{"id over 32 bits", req, codec.Edit{SetID: true, ID: 1 << 32}, 0, false},
		{"header over 64 KiB", req, codec.Edit{Headers: []codec.KV{{Key: "k", Value: big}}}, 0, false},
		{"frame over the maximum", req, codec.Edit{Headers: []codec.KV{{Key: "k", Value: "v"}}}, len(req) + 3, false},
		{"key not UTF-8", req, codec.Edit{Headers: []codec.KV{{Key: "\xff", Value: "v"}}}, 0, false},
		{"stream frame headers", goldenFrame(t, "stream_c2s_init"), codec.Edit{Headers: []codec.KV{{Key: "k", Value: "v"}}}, 0, true},
	} {
		f, err := NewFactory(Options{MaxFrame: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		c := f.NewCodec()
		m := &codec.Message{Frame: tc.frame}
		if err := c.Decode(tc.frame, m); err != nil {
			t.Fatal(err)
		}
		dst := []byte("keep")
		out, err := c.Encode(dst, m, &tc.edit)
		if err == nil || string(out) != "keep" || errors.Is(err, codec.ErrUnsupported) != tc.unsup {
			t.Errorf("%s: out %d bytes, err %v", tc.name, len(out), err)
		}
	}
}

// TestStreamIDRewrite: SetID on a stream frame rewrites its head's stream id.
func TestStreamIDRewrite(t *testing.T) {
	f := goldenFrame(t, "stream_c2s_init")
	out, err := encode(t, f, &codec.Edit{SetID: true, ID: 7})
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeFrame(t, out); m.StreamID != 7 || m.ID != 7 || !bytes.Equal(out[14:], f[14:]) {
		t.Errorf("stream %d id %d", m.StreamID, m.ID)
	}
}

// TestEncodeAllocations: id rewrites and trans_info edits into a buffer
// with room allocate nothing.
func TestEncodeAllocations(t *testing.T) {
	c := newTestCodec(t)
	m := decodeFrame(t, goldenFrame(t, "req_trans_info"))
	dst := make([]byte, 0, 4096)
	for _, e := range []*codec.Edit{
		{SetID: true, ID: 9},
		{SetID: true, ID: 1 << 20},
		{SetID: true, ID: 9, Headers: []codec.KV{{Key: "x-route", Value: "p9"}, {Key: "x-new", Value: "v"}}},
	} {
		if n := testing.AllocsPerRun(100, func() {
			if _, err := c.Encode(dst[:0], m, e); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("edit %+v: %v allocations", e, n)
		}
	}
}
