package trpc

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
	"github.com/metaproxy/metaproxy/internal/pbwire"
)

// TestGoldens decodes every golden frame and compares with the decoding
// the generated types gave when the golden was captured.
func TestGoldens(t *testing.T) {
	for _, g := range loadGoldens(t) {
		t.Run(g.Name, func(t *testing.T) {
			m := decodeFrame(t, g.Frame)
			w := g.Want
			if m.Kind.String() != w.Kind || m.ID != w.ID || m.StreamID != w.StreamID {
				t.Errorf("got kind=%v id=%d stream=%d, want %s %d %d", m.Kind, m.ID, m.StreamID, w.Kind, w.ID, w.StreamID)
			}
			if w.Status != "" && m.Status.String() != w.Status {
				t.Errorf("status %v, want %s", m.Status, w.Status)
			}
			if m.Meta.Len() != len(w.Meta) {
				t.Errorf("%d metadata entries %v, want %d %v", m.Meta.Len(), m.Meta.All(), len(w.Meta), w.Meta)
			}
			for k, v := range w.Meta {
				if got, ok := m.Meta.Get(k); !ok || got != v {
					t.Errorf("meta %s = %q (present %v), want %q", k, got, ok, v)
				}
			}
		})
	}
}

// garbage are byte strings a fresh codec must refuse.
var garbage = [][]byte{
	{0x00},
	{0x09, 0x00},
	{0x09, 0x30, 0x02}, // data frame type 2
	[]byte("GET / HTTP/1.1\r\n\r\n"),
	// A head announcing 16 MiB, over the 10 MiB default.
	{0x09, 0x30, 0, 0, 0x01, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0},
	// Total length shorter than the head.
	{0x09, 0x30, 0, 0, 0, 0, 0, 15, 0, 0, 0, 0, 0, 1, 1, 0},
	// A header length beyond the total length.
	{0x09, 0x30, 0, 0, 0, 0, 0, 18, 0, 3, 0, 0, 0, 1, 1, 0, 0x18, 0x01},
	// A unary frame without a header.
	{0x09, 0x30, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 1, 1, 0, 0x0a},
	// A header that is no protobuf message (a truncated varint).
	{0x09, 0x30, 0, 0, 0, 0, 0, 18, 0, 2, 0, 0, 0, 1, 1, 0, 0x18, 0x81},
	// An attachment_size beyond the frame.
	{0x09, 0x30, 0, 0, 0, 0, 0, 20, 0, 4, 0, 0, 0, 1, 1, 0, 0x18, 0x01, 0x60, 0x05},
	// A header with request (caller) and response (func_ret) fields.
	{0x09, 0x30, 0, 0, 0, 0, 0, 22, 0, 6, 0, 0, 0, 1, 1, 0, 0x2a, 0x01, 'a', 0x28, 0x01, 0x00},
	// A stream frame of unknown stream frame type 5.
	{0x09, 0x30, 1, 5, 0, 0, 0, 16, 0, 0, 0, 0, 0, 100, 1, 0},
}

// TestConformance runs the conformance kit on the unary goldens and,
// separately, on the stream goldens (which take id rewrites of their
// stream id but no trans_info edits).
func TestConformance(t *testing.T) {
	f, err := NewFactory(Options{})
	if err != nil {
		t.Fatal(err)
	}
	unary := codectest.Suite{Factory: f, Garbage: garbage, Body: libBody}
	streams := codectest.Suite{Factory: f, Body: libBody, NoHeaders: true, Streams: true}
	for _, g := range loadGoldens(t) {
		s := &unary
		if g.stream() {
			s = &streams
		}
		if g.fromClient() {
			s.Requests = append(s.Requests, g.Frame)
		} else {
			s.Responses = append(s.Responses, g.Frame)
		}
	}
	t.Run("unary", func(t *testing.T) { codectest.Run(t, unary) })
	t.Run("streams", func(t *testing.T) { codectest.Run(t, streams) })
}

// TestKinds checks the classification of the goldens: which are oneway,
// which two-way, which responses fail and how.
func TestKinds(t *testing.T) {
	for name, want := range map[string]struct {
		kind   codec.Kind
		status codec.Status
	}{
		"req_hello":           {codec.KindRequest, codec.StatusOK},
		"req_oneway":          {codec.KindOneway, codec.StatusOK},
		"rsp_hello":           {codec.KindResponse, codec.StatusOK},
		"rsp_func_error":      {codec.KindResponse, codec.StatusError},
		"rsp_no_func":         {codec.KindResponse, codec.StatusServerFailure},
		"stream_c2s_init":     {codec.KindStreamInit, codec.StatusOK},
		"stream_s2c_feedback": {codec.KindStreamData, codec.StatusOK},
		"stream_s2c_close":    {codec.KindStreamClose, codec.StatusOK},
	} {
		m := decodeFrame(t, goldenFrame(t, name))
		if m.Kind != want.kind || m.Status != want.status {
			t.Errorf("%s: %v %v, want %v %v", name, m.Kind, m.Status, want.kind, want.status)
		}
	}
}

// TestTransInfoCannotShadowHeader: a trans_info entry named like a key the
// header sets (func, Interface, ...) does not replace it.
func TestTransInfoCannotShadowHeader(t *testing.T) {
	hb := pbwire.AppendBytesField(nil, reqFunc, "/pkg.Svc/Real")
	hb = pbwire.AppendBytesField(hb, reqCallee, "pkg.Svc")
	for _, k := range []string{"func", "Interface", "METHOD", "caller", "callee", "x-ok"} {
		hb = pbwire.AppendEntry(hb, reqTransInfo, k, "spoofed")
	}
	m := decodeFrame(t, unaryFrame(hb, nil))
	for k, want := range map[string]string{"func": "/pkg.Svc/Real", "interface": "pkg.Svc", "method": "Real",
		"caller": "", "callee": "pkg.Svc", "x-ok": "spoofed"} {
		if got := m.Meta.Value(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// unaryFrame returns a version 1 unary frame with header hb and body.
func unaryFrame(hb, body []byte) []byte {
	f := appendHead(nil, head{total: HeadLen + len(hb) + len(body), headerLen: len(hb), version: 1})
	return append(append(f, hb...), body...)
}
