package trpc

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// TestErrorReply: every local error answers a two-way request with a
// ResponseProtocol the generated types read: the request's id, ret =
// CodeFor, error_msg = the error's text, the request's content type; the
// head echoes the request's stream id and version, as trpc-go's server's
// does.
func TestErrorReply(t *testing.T) {
	for _, name := range []string{"req_hello", "req_trans_info", "req_id_2byte", "req_attachment"} {
		f := goldenFrame(t, name)
		req := decodeFrame(t, f)
		lreq := mustLib(t, f, true)
		for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
			e := &codec.Error{Type: et, Message: "no route for " + name}
			out := newTestCodec(t).ErrorReply([]byte("x"), req, e)
			if out[0] != 'x' {
				t.Fatal("ErrorReply overwrote dst")
			}
			l := mustLib(t, out[1:], false)
			if l.rsp.RequestId != uint32(req.ID) || l.rsp.Ret != CodeFor(et) || string(l.rsp.ErrorMsg) != e.Error() ||
				l.rsp.FuncRet != 0 || l.rsp.ContentType != lreq.req.ContentType || len(l.body) != 0 || len(l.att) != 0 {
				t.Errorf("%s %v: reply %v", name, et, l.rsp)
			}
			if l.streamID != lreq.streamID || l.version != lreq.version {
				t.Errorf("%s %v: head stream id %d version %d, want %d %d", name, et, l.streamID, l.version, lreq.streamID, lreq.version)
			}
			m := decodeFrame(t, out[1:])
			if m.Kind != codec.KindResponse || m.Status != codec.StatusServerFailure || m.ID != req.ID {
				t.Errorf("%s %v: decoded %v %v id %d", name, et, m.Kind, m.Status, m.ID)
			}
		}
	}
}

// TestCodeFor pins the documented mapping (README.md).
func TestCodeFor(t *testing.T) {
	want := map[codec.ErrorType]int32{
		codec.ErrRouteNotFound: 11, codec.ErrClusterNotFound: 11, codec.ErrNoHealthyUpstream: 131,
		codec.ErrUnavailable: 141, codec.ErrOverloaded: 22, codec.ErrTimeout: 21, codec.ErrBadResponse: 122,
		codec.ErrInternal: 31, codec.ErrUnauthorized: 41, codec.ErrUnknownMethod: 12, codec.ErrBadRequest: 1,
	}
	if len(want) != int(codec.NumErrorTypes) {
		t.Fatalf("the table covers %d of %d error types", len(want), codec.NumErrorTypes)
	}
	for et, code := range want {
		if got := CodeFor(et); got != code {
			t.Errorf("%v: %d, want %d", et, got, code)
		}
	}
}

// TestNoReply: oneway calls and responses get no error reply; heartbeats
// do not exist.
func TestNoReply(t *testing.T) {
	for _, name := range []string{"req_oneway", "rsp_hello"} {
		m := decodeFrame(t, goldenFrame(t, name))
		if out := newTestCodec(t).ErrorReply(nil, m, codec.Errorf(codec.ErrTimeout, "late")); len(out) != 0 {
			t.Errorf("%s: %d-byte reply", name, len(out))
		}
	}
	m := decodeFrame(t, goldenFrame(t, "req_hello"))
	if out := newTestCodec(t).HeartbeatReply([]byte("x"), m); string(out) != "x" {
		t.Errorf("HeartbeatReply appended %q", out[1:])
	}
}

// TestErrorReplyBounds: a nil error is an internal error; a huge message
// is cut so that the header fits; a request without a frame (a reply built
// from an id alone) gets a version 1 head holding the id.
func TestErrorReplyBounds(t *testing.T) {
	c := newTestCodec(t)
	m := decodeFrame(t, goldenFrame(t, "req_hello"))
	if l := mustLib(t, c.ErrorReply(nil, m, nil), false); l.rsp.Ret != RetServerSystem {
		t.Errorf("nil error: ret %d", l.rsp.Ret)
	}
	long := codec.Errorf(codec.ErrInternal, "%s", strings.Repeat("e", 100000))
	if l := mustLib(t, c.ErrorReply(nil, m, long), false); len(l.rsp.ErrorMsg) != maxErrorMsg {
		t.Errorf("error_msg of %d bytes", len(l.rsp.ErrorMsg))
	}
	bare := &codec.Message{Kind: codec.KindRequest, ID: 300}
	if l := mustLib(t, c.ErrorReply(nil, bare, codec.Errorf(codec.ErrTimeout, "t")), false); l.rsp.RequestId != 300 || l.streamID != 300 || l.version != 1 {
		t.Errorf("bare request: %v stream %d version %d", l.rsp, l.streamID, l.version)
	}
}

// TestRejectReply: a request over max_frame_bytes is answered when its
// header has arrived with the head; a partial header, a oneway call, a
// response or a stream frame get nothing.
func TestRejectReply(t *testing.T) {
	f, err := NewFactory(Options{MaxFrame: 64})
	if err != nil {
		t.Fatal(err)
	}
	big := func(name string, keep int) []byte {
		b := append([]byte(nil), goldenFrame(t, name)...)
		binary.BigEndian.PutUint32(b[4:8], 1<<30)
		return b[:min(keep, len(b))]
	}
	hl := func(b []byte) int { return HeadLen + int(binary.BigEndian.Uint16(b[8:10])) }
	req := big("req_trans_info", 1<<20)
	e := codec.Errorf(codec.ErrBadRequest, "frame too large")
	for _, tc := range []struct {
		name  string
		buf   []byte
		reply bool
	}{
		{"whole header", req[:hl(req)], true},
		{"header and more", req, true},
		{"partial header", req[:hl(req)-1], false},
		{"head only", req[:HeadLen], false},
		{"oneway", big("req_oneway", 1<<20), false},
		{"response", big("rsp_hello", 1<<20), false},
		{"stream", big("stream_c2s_init", 1<<20), false},
	} {
		c := f.NewCodec()
		if _, err := c.Split(tc.buf); err == nil && len(tc.buf) >= HeadLen {
			t.Fatalf("%s: split accepted a 1 GiB frame", tc.name)
		}
		out := c.(codec.Rejecter).RejectReply(nil, tc.buf, e)
		if !tc.reply {
			if len(out) != 0 {
				t.Errorf("%s: %d-byte reply", tc.name, len(out))
			}
			continue
		}
		l := mustLib(t, out, false)
		if l.rsp.RequestId != 2 || l.rsp.Ret != RetServerDecode || l.streamID != 2 {
			t.Errorf("%s: reply %v stream %d", tc.name, l.rsp, l.streamID)
		}
	}
}
