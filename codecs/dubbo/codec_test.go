package dubbo

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// TestGoldens decodes every golden frame and compares with the decoding
// dubbo-go-hessian2 gave when the golden was written.
func TestGoldens(t *testing.T) {
	for _, g := range loadGoldens(t) {
		t.Run(g.Name, func(t *testing.T) {
			m := decodeFrame(t, g.Frame)
			w := g.Want
			if m.Kind.String() != w.Kind || m.ID != w.ID || m.HeartbeatRequest != w.HeartbeatRequest {
				t.Errorf("got kind=%v id=%d hb=%v, want %s %d %v", m.Kind, m.ID, m.HeartbeatRequest, w.Kind, w.ID, w.HeartbeatRequest)
			}
			if m.Kind == codec.KindResponse && (m.Status == codec.StatusOK) != (w.Status == "ok") {
				t.Errorf("status %v, want %s", m.Status, w.Status)
			}
			if m.Meta.Len() != len(w.Meta) {
				t.Errorf("%d metadata entries %v, want %d %v", m.Meta.Len(), m.Meta.All(), len(w.Meta), w.Meta)
			}
			for k, v := range w.Meta {
				if got, ok := m.Meta.Get(k); !ok || got != v {
					t.Errorf("meta %s = %.40q (present %v), want %.40q", k, got, ok, v)
				}
			}
		})
	}
}

// TestConformance runs the conformance kit on the Hessian 2 goldens and,
// separately, on frames of other serializations, which cannot carry header
// edits.
func TestConformance(t *testing.T) {
	var s, opaque codectest.Suite
	s.Factory, _ = NewFactory(Options{})
	opaque.Factory, opaque.NoHeaders = s.Factory, true
	for _, g := range loadGoldens(t) {
		dst := &s
		if g.Frame[2]&serialMask != serialHessian2 {
			dst = &opaque
		}
		if g.isRequest() {
			dst.Requests = append(dst.Requests, g.Frame)
		} else {
			dst.Responses = append(dst.Responses, g.Frame)
		}
	}
	s.Garbage = [][]byte{
		{0x00},
		{0xda, 0x00},
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		// A header announcing a body beyond the 8 MiB default limit.
		{0xda, 0xbb, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x80, 0x00, 0x01},
		// A complete frame whose request body is not Hessian 2.
		{0xda, 0xbb, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'Z'},
	}
	t.Run("Hessian2", func(t *testing.T) { codectest.Run(t, s) })
	t.Run("OtherSerialization", func(t *testing.T) { codectest.Run(t, opaque) })
}

// TestResponseClasses: a provider's exception is an application error, a
// non-OK status a server failure.
func TestResponseClasses(t *testing.T) {
	want := map[string]codec.Status{"lib_rsp_value": codec.StatusOK, "lib_rsp_exception": codec.StatusError,
		"lib_rsp_exception_attachments": codec.StatusError, "lib_rsp_service_not_found": codec.StatusServerFailure,
		"go_response_error_1": codec.StatusError}
	seen := 0
	for _, g := range loadGoldens(t) {
		if st, ok := want[g.Name]; ok {
			seen++
			if m := decodeFrame(t, g.Frame); m.Status != st {
				t.Errorf("%s: %v, want %v", g.Name, m.Status, st)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d of %d goldens", seen, len(want))
	}
}

func TestProbeRequestIsAHeartbeat(t *testing.T) {
	f, _ := NewFactory(Options{})
	c := f.NewCodec()
	p := c.(codec.Prober).ProbeRequest(nil, 42)
	if n, err := c.Split(p); err != nil || n != len(p) {
		t.Fatalf("split %d %v", n, err)
	}
	var m codec.Message
	m.Frame = p
	if err := c.Decode(p, &m); err != nil || m.Kind != codec.KindHeartbeat || !m.HeartbeatRequest || m.ID != 42 {
		t.Fatalf("%v: %v hb=%v id=%d", err, m.Kind, m.HeartbeatRequest, m.ID)
	}
}
