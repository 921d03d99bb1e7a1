package declarative

import (
	"maps"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
	"github.com/metaproxy/metaproxy/codecs/declarative/internal/kvpeer"
)

// kvFrame is the wire form of f, as the hand-written peer writes it.
func kvFrame(tb testing.TB, f kvpeer.Frame) []byte {
	tb.Helper()
	b, err := f.Append(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// kvParse reads a frame the codec wrote with the peer's own parser.
func kvParse(tb testing.TB, b []byte) kvpeer.Frame {
	tb.Helper()
	f, n, err := kvpeer.Parse(b)
	if err != nil || n != len(b) {
		tb.Fatalf("kvpeer cannot read % x: n=%d err=%v", b, n, err)
	}
	return f
}

var (
	kvHello   = kvpeer.Frame{Flags: kvpeer.FlagRequest, ID: 7, Pairs: []kvpeer.Pair{{Key: "op", Value: "hello"}, {Key: "name", Value: "ann"}, {Key: "route", Value: "a"}}}
	kvEcho    = kvpeer.Frame{Flags: kvpeer.FlagRequest, ID: 0x01020304, Pairs: []kvpeer.Pair{{Key: "op", Value: "echo"}, {Key: "x-trace", Value: "t1"}, {Key: "x-trace", Value: "t2"}, {Key: "empty", Value: ""}}}
	kvOneway  = kvpeer.Frame{Flags: kvpeer.FlagRequest | kvpeer.FlagOneway, ID: 9, Pairs: []kvpeer.Pair{{Key: "op", Value: "log"}}}
	kvPing    = kvpeer.Frame{Flags: kvpeer.FlagHeartbeat, ID: 10}
	kvBare    = kvpeer.Frame{Flags: kvpeer.FlagRequest, ID: 11}
	kvAnswer  = kvpeer.Frame{Flags: kvpeer.FlagResponse, ID: 7, Pairs: []kvpeer.Pair{{Key: "reply", Value: "Hello ann from s1"}, {Key: "served-by", Value: "s1"}}}
	kvFailed  = kvpeer.Frame{Flags: kvpeer.FlagResponse, ID: 8, Status: kvpeer.StatusAppError, Pairs: []kvpeer.Pair{{Key: "error", Value: "failed: x"}}}
	kvCrashed = kvpeer.Frame{Flags: kvpeer.FlagResponse, ID: 12, Status: kvpeer.StatusInternal}
	kvPong    = kvpeer.Frame{Flags: kvpeer.FlagHeartbeat | kvpeer.FlagResponse, ID: 10}
)

func TestKVDecode(t *testing.T) {
	f := loadExample(t, "kv.yaml")
	for _, tc := range []struct {
		in     kvpeer.Frame
		kind   codec.Kind
		hb     bool
		status codec.Status
		meta   map[string]string
	}{
		{kvHello, codec.KindRequest, false, codec.StatusOK, map[string]string{"op": "hello", "name": "ann", "route": "a", "kv-version": "1"}},
		{kvEcho, codec.KindRequest, false, codec.StatusOK, map[string]string{"op": "echo", "x-trace": "t2", "empty": "", "kv-version": "1"}},
		{kvOneway, codec.KindOneway, false, codec.StatusOK, map[string]string{"op": "log", "kv-version": "1"}},
		{kvPing, codec.KindHeartbeat, true, codec.StatusOK, map[string]string{"kv-version": "1"}},
		{kvAnswer, codec.KindResponse, false, codec.StatusOK, map[string]string{"reply": "Hello ann from s1", "served-by": "s1", "kv-version": "1"}},
		{kvFailed, codec.KindResponse, false, codec.StatusError, map[string]string{"error": "failed: x", "kv-version": "1"}},
		{kvCrashed, codec.KindResponse, false, codec.StatusServerFailure, map[string]string{"kv-version": "1"}},
		{kvPong, codec.KindHeartbeat, false, codec.StatusOK, map[string]string{"kv-version": "1"}},
	} {
		m := decode(t, f, kvFrame(t, tc.in))
		if m.Kind != tc.kind || m.HeartbeatRequest != tc.hb || m.ID != uint64(tc.in.ID) || m.Status != tc.status {
			t.Errorf("%+v: decoded %v hb=%v id=%d %v", tc.in, m.Kind, m.HeartbeatRequest, m.ID, m.Status)
		}
		if got := metaMap(m); !maps.Equal(got, tc.meta) {
			t.Errorf("%+v: metadata %v, want %v", tc.in, got, tc.meta)
		}
	}
}

// TestKVRepliesReadByPeer: the description's replies, read by the peer.
func TestKVRepliesReadByPeer(t *testing.T) {
	f := loadExample(t, "kv.yaml")
	want := map[codec.ErrorType]uint16{
		codec.ErrRouteNotFound: kvpeer.StatusNoRoute, codec.ErrClusterNotFound: kvpeer.StatusNoRoute,
		codec.ErrNoHealthyUpstream: kvpeer.StatusUnavailable, codec.ErrUnavailable: kvpeer.StatusUnavailable,
		codec.ErrOverloaded: kvpeer.StatusOverloaded, codec.ErrTimeout: kvpeer.StatusTimeout,
		codec.ErrBadRequest: kvpeer.StatusBadRequest, codec.ErrUnauthorized: kvpeer.StatusDenied,
		codec.ErrInternal: kvpeer.StatusInternal, codec.ErrBadResponse: kvpeer.StatusInternal,
		codec.ErrUnknownMethod: kvpeer.StatusInternal,
	}
	m := decode(t, f, kvFrame(t, kvHello))
	for et := codec.ErrorType(0); et < codec.NumErrorTypes; et++ {
		e := &codec.Error{Type: et, Message: "for ann"}
		r := kvParse(t, f.NewCodec().ErrorReply(nil, m, e))
		if r.Flags != kvpeer.FlagResponse || r.ID != kvHello.ID || r.Status != want[et] {
			t.Errorf("%v: reply %+v, want status %d", et, r, want[et])
		}
		if msg, _ := r.Get("error"); msg != e.Error() || len(r.Pairs) != 1 {
			t.Errorf("%v: pairs %v", et, r.Pairs)
		}
	}
	if out := f.NewCodec().ErrorReply(nil, decode(t, f, kvFrame(t, kvOneway)), &codec.Error{}); len(out) != 0 {
		t.Errorf("a oneway request got an error reply")
	}
	ping := decode(t, f, kvFrame(t, kvPing))
	if r := kvParse(t, f.NewCodec().HeartbeatReply(nil, ping)); r.Flags != kvpeer.FlagHeartbeat|kvpeer.FlagResponse || r.ID != kvPing.ID || len(r.Pairs) != 0 {
		t.Errorf("heartbeat reply %+v", r)
	}
}

// TestKVEditsReadByPeer: id rewrites and header edits, read by the peer.
func TestKVEditsReadByPeer(t *testing.T) {
	f := loadExample(t, "kv.yaml")
	for _, in := range []kvpeer.Frame{kvHello, kvEcho, kvOneway, kvBare, kvAnswer} {
		m := decode(t, f, kvFrame(t, in))
		out, err := f.NewCodec().Encode(nil, m, &codec.Edit{SetID: true, ID: 0xfffffffe,
			Headers: []codec.KV{{Key: "x-trace", Value: "new"}, {Key: "x-added", Value: strings.Repeat("v", 300)}}})
		if err != nil {
			t.Fatal(err)
		}
		r := kvParse(t, out)
		want := in.Map()
		want["x-trace"], want["x-added"] = "new", strings.Repeat("v", 300)
		if r.ID != 0xfffffffe || r.Flags != in.Flags || r.Status != in.Status || !maps.Equal(r.Map(), want) {
			t.Errorf("%+v edited: %+v", in, r)
		}
		if n := strings.Count(string(out), "x-trace"); n != 1 {
			t.Errorf("%d x-trace pairs after the edit", n)
		}
		if _, err := f.NewCodec().Encode(nil, m, &codec.Edit{SetID: true, ID: 1 << 32}); err == nil {
			t.Errorf("an id over 32 bits was accepted")
		}
		if _, err := f.NewCodec().Encode(nil, m, &codec.Edit{Headers: []codec.KV{{Key: strings.Repeat("k", 256), Value: "v"}}}); err == nil {
			t.Errorf("a key over the 1-byte prefix was accepted")
		}
	}
}

// kvBody is the payload of a KVP1 frame: the pairs whose keys do not
// start with "x-" (those are headers).
func kvBody(b []byte) ([]byte, error) {
	f, _, err := kvpeer.Parse(b)
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, p := range f.Pairs {
		if !strings.HasPrefix(p.Key, "x-") {
			out = append(append(append(out, p.Key...), '='), p.Value...)
			out = append(out, 0)
		}
	}
	return out, nil
}

func TestKVConformance(t *testing.T) {
	var reqs, rsps [][]byte
	for _, f := range []kvpeer.Frame{kvHello, kvEcho, kvOneway, kvPing, kvBare} {
		reqs = append(reqs, kvFrame(t, f))
	}
	for _, f := range []kvpeer.Frame{kvAnswer, kvFailed, kvCrashed, kvPong} {
		rsps = append(rsps, kvFrame(t, f))
	}
	codectest.Run(t, codectest.Suite{
		Factory:   loadExample(t, "kv.yaml"),
		Requests:  reqs,
		Responses: rsps,
		Garbage:   kvGarbage,
		Body:      kvBody,
	})
}

var kvGarbage = [][]byte{
	[]byte("KVP2"),
	[]byte("GET / HTTP/1.1\r\n\r\n"),
	append([]byte("KVP1\x02\x01\x00\x00"), 0, 0, 0, 1, 0, 0, 0, 0),          // version 2
	append([]byte("KVP1\x01\x00\x00\x00"), 0, 0, 0, 1, 0, 0, 0, 0),          // no kind bit
	append([]byte("KVP1\x01\x01\x00\x00"), 0, 0, 0, 1, 0xff, 0xff, 0xff, 0), // too large
	append([]byte("KVP1\x01\x01\x00\x00"), 0, 0, 0, 1, 0, 0, 0, 3, 5, 'a', 'b'),
}
