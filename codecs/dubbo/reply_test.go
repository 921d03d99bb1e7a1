package dubbo

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

func TestStatusFor(t *testing.T) {
	want := map[codec.ErrorType]byte{
		codec.ErrRouteNotFound:     60,
		codec.ErrClusterNotFound:   60,
		codec.ErrNoHealthyUpstream: 80,
		codec.ErrUnavailable:       80,
		codec.ErrOverloaded:        100,
		codec.ErrTimeout:           31,
		codec.ErrBadResponse:       50,
		codec.ErrInternal:          80,
		codec.ErrUnauthorized:      80,
		codec.ErrUnknownMethod:     80,
		codec.ErrBadRequest:        40,
	}
	if len(want) != int(codec.NumErrorTypes) {
		t.Fatalf("the table covers %d of %d error types", len(want), codec.NumErrorTypes)
	}
	for et, st := range want {
		if got := StatusFor(et); got != st {
			t.Errorf("StatusFor(%v) = %d, want %d", et, got, st)
		}
	}
}

func TestErrorReply(t *testing.T) {
	c := newTestCodec(t)
	req := decodeFrame(t, goldenFrame(t, "lib_req_typical"))
	e := codec.Errorf(codec.ErrTimeout, "no answer from %s in %s", "10.0.0.1:20880", "3s")
	out := c.ErrorReply([]byte("prefix"), req, e)
	if !bytes.HasPrefix(out, []byte("prefix")) {
		t.Fatal("ErrorReply did not append to dst")
	}
	out = out[len("prefix"):]
	h, err := parseHeader(out)
	if err != nil {
		t.Fatal(err)
	}
	if h.flags != serialHessian2 || h.status != StatusServerTimeout || h.id != req.ID {
		t.Errorf("header flags=%#x status=%d id=%d, want a hessian2 response with status 31 and id %d", h.flags, h.status, h.id, req.ID)
	}
	var r reader
	r.reset(out[HeaderLen:])
	if msg, n, _, err := r.str(0); err != nil || msg != e.Error() || n != h.bodyLen {
		t.Errorf("body reads as %q (%d of %d bytes), %v; want %q", msg, n, h.bodyLen, err, e.Error())
	}
	m := decodeFrame(t, out)
	if m.Kind != codec.KindResponse || m.Status != codec.StatusServerFailure || m.ID != req.ID {
		t.Errorf("reply decodes as kind %v status %v id %d", m.Kind, m.Status, m.ID)
	}

	for _, name := range []string{"lib_req_oneway", "lib_req_heartbeat", "lib_rsp_value"} {
		m := decodeFrame(t, goldenFrame(t, name))
		if out := c.ErrorReply([]byte("x"), m, e); string(out) != "x" {
			t.Errorf("%s: ErrorReply wrote % x, want nothing", name, out[1:])
		}
	}
}

func TestHeartbeatReply(t *testing.T) {
	c := newTestCodec(t)
	hb := decodeFrame(t, goldenFrame(t, "lib_req_heartbeat"))
	out := c.HeartbeatReply(nil, hb)
	want := []byte{0xda, 0xbb, 0x22, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 'N', 'N'}
	binary.BigEndian.PutUint64(want[4:], hb.ID)
	if !bytes.Equal(out, want) {
		t.Errorf("heartbeat reply % x, want % x", out, want)
	}
	// dubbo-go-hessian2 writes the same bytes for a heartbeat response.
	if lib := goldenFrame(t, "lib_rsp_heartbeat"); !bytes.Equal(out, lib) {
		t.Errorf("heartbeat reply % x differs from the library's % x", out, lib)
	}
	if out := c.HeartbeatReply(nil, decodeFrame(t, goldenFrame(t, "lib_rsp_heartbeat"))); len(out) != 0 {
		t.Errorf("a heartbeat response was answered: % x", out)
	}
}
