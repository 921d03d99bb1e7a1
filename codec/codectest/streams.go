package codectest

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// runStreams checks what the engine relies on to proxy the streams of a
// codec that declares codec.Capabilities.Streams: every stream frame
// carries its stream id (StreamID, also its ID), an id rewrite moves the
// frame to another stream, and ErrorReply ends a stream natively — a
// refused INIT is answered with a failed INIT, any other stream frame (or
// a bare message naming only the stream, which is what the engine has
// when an upstream dies mid-stream) with a CLOSE that is not OK, both for
// the same stream id.
func runStreams(t *testing.T, s Suite) {
	t.Run("Streams", func(t *testing.T) {
		all := append(append([][]byte(nil), s.Requests...), s.Responses...)
		inits := 0
		for i, f := range all {
			m := decodeMsg(t, s.Factory.NewCodec(), f)
			switch m.Kind {
			case codec.KindStreamInit:
				inits++
			case codec.KindStreamData, codec.KindStreamClose:
			default:
				continue
			}
			if m.StreamID == 0 || m.ID != m.StreamID {
				t.Errorf("frame %d (%v): stream id %d, id %d: want the same non-zero id", i, m.Kind, m.StreamID, m.ID)
			}
			c := s.Factory.NewCodec()
			m = decodeMsg(t, c, f)
			out, err := c.Encode(nil, m, &codec.Edit{SetID: true, ID: m.StreamID + 7})
			if err != nil {
				t.Fatalf("frame %d: stream id rewrite: %v", i, err)
			}
			if m2 := decodeMsg(t, s.Factory.NewCodec(), out); m2.StreamID != m.StreamID+7 || m2.Kind != m.Kind {
				t.Errorf("frame %d: after rewrite to %d: %v stream %d", i, m.StreamID+7, m2.Kind, m2.StreamID)
			}
			checkStreamEnd(t, s, i, m)
		}
		if inits == 0 {
			t.Fatal("codectest: a Streams suite needs an INIT frame")
		}
		for _, k := range []codec.Kind{codec.KindStreamInit, codec.KindStreamData} {
			checkStreamEnd(t, s, -1, &codec.Message{Kind: k, ID: 4242, StreamID: 4242})
		}
	})
}

// checkStreamEnd checks the error reply to stream message m (frame i, or
// -1 for a bare message).
func checkStreamEnd(t *testing.T, s Suite, i int, m *codec.Message) {
	t.Helper()
	want := codec.KindStreamClose
	if m.Kind == codec.KindStreamInit {
		want = codec.KindStreamInit
	}
	for _, et := range []codec.ErrorType{codec.ErrRouteNotFound, codec.ErrUnavailable, codec.ErrTimeout} {
		out := s.Factory.NewCodec().ErrorReply(nil, m, &codec.Error{Type: et, Message: "conformance " + et.String()})
		if len(out) == 0 {
			t.Fatalf("frame %d (%v): no error reply for %v", i, m.Kind, et)
		}
		c := s.Factory.NewCodec()
		d := decodeMsg(t, c, out)
		if d.Kind != want || d.Status == codec.StatusOK || d.StreamID != m.StreamID {
			t.Errorf("frame %d (%v) %v: reply decoded as %v status %v stream %d, want a failed %v of stream %d",
				i, m.Kind, et, d.Kind, d.Status, d.StreamID, want, m.StreamID)
		}
	}
}
