// Package codectest is the conformance kit every codec must pass.
//
// A codec author collects real frames of the protocol (captured from, or
// produced by, the protocol's own client and server libraries) and calls Run:
//
//	func TestConformance(t *testing.T) {
//		codectest.Run(t, codectest.Suite{Factory: f, Requests: reqs, Responses: rsps, ...})
//	}
//
// Run checks: each frame round-trips unchanged; the same bytes split at every
// boundary still decode to the same message; several frames in one read all
// decode; garbage and corrupted frames give errors, never panics; request id
// rewrites and header edits keep the body intact and are seen by a decoder;
// every local error reply decodes as an error response with the request's id.
package codectest

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// Suite describes the codec under test and its sample frames.
type Suite struct {
	// Factory makes fresh codecs; one is used per simulated connection.
	Factory codec.Factory
	// Requests are complete request frames (two-way, oneway, heartbeat...).
	Requests [][]byte
	// Responses are complete response frames.
	Responses [][]byte
	// Garbage are byte strings that must be rejected with an error by a
	// fresh codec (after at most len(garbage) bytes are seen).
	Garbage [][]byte
	// Body extracts the payload (call arguments, result) from a frame with
	// the protocol's own library. Run compares it before and after edits.
	// Nil skips the body comparison.
	Body func(frame []byte) ([]byte, error)
	// NoHeaders is set for protocol variants that cannot carry header edits;
	// Run then expects Encode with headers to fail with codec.ErrUnsupported.
	NoHeaders bool
	// NoIDs is set for protocols without request ids.
	NoIDs bool
	// Streams is set for a codec that declares codec.Capabilities.Streams:
	// the frames include a stream's (at least its INIT), and Run checks
	// stream ids, their rewrite and the native end of a stream (streams.go).
	Streams bool
}

// Decoded is a frame decoded in isolation, for comparisons.
type Decoded struct {
	Kind    codec.Kind
	ID      uint64
	Status  codec.Status
	Variant uint16
	Meta    []codec.KV
}

// DecodeOne splits and decodes the first frame of buf with c.
func DecodeOne(c codec.Codec, buf []byte) (d Decoded, n int, err error) {
	n, err = c.Split(buf)
	if err != nil || n == 0 {
		return d, n, err
	}
	if n > len(buf) {
		return d, n, fmt.Errorf("split returned %d > len(buf) %d", n, len(buf))
	}
	var m codec.Message
	frame := append([]byte(nil), buf[:n]...)
	m.Frame = frame
	if err = c.Decode(frame, &m); err != nil {
		return d, n, err
	}
	return Decoded{Kind: m.Kind, ID: m.ID, Status: m.Status, Variant: m.Variant, Meta: append([]codec.KV(nil), m.Meta.All()...)}, n, nil
}

func decodeMsg(t *testing.T, c codec.Codec, frame []byte) *codec.Message {
	t.Helper()
	n, err := c.Split(frame)
	if err != nil || n != len(frame) {
		t.Fatalf("split of a %d-byte frame: n=%d err=%v", len(frame), n, err)
	}
	m := &codec.Message{Frame: frame}
	if err := c.Decode(frame, m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func equal(a, b Decoded) bool {
	if a.Kind != b.Kind || a.ID != b.ID || a.Status != b.Status || a.Variant != b.Variant || len(a.Meta) != len(b.Meta) {
		return false
	}
	for i := range a.Meta {
		if a.Meta[i] != b.Meta[i] {
			return false
		}
	}
	return true
}

// Run runs the conformance suite.
func Run(t *testing.T, s Suite) {
	t.Helper()
	all := append(append([][]byte(nil), s.Requests...), s.Responses...)
	if len(s.Requests) == 0 {
		t.Fatal("codectest: Suite needs at least one request frame")
	}
	t.Run("RoundTrip", func(t *testing.T) {
		for i, f := range all {
			c := s.Factory.NewCodec()
			m := decodeMsg(t, c, f)
			out, err := c.Encode(nil, m, nil)
			if err != nil || !bytes.Equal(out, f) {
				t.Errorf("frame %d: encode without edit changed the frame (err=%v)", i, err)
			}
		}
	})
	t.Run("SplitAtEveryBoundary", func(t *testing.T) {
		for i, f := range all {
			want, _, err := DecodeOne(s.Factory.NewCodec(), f)
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			for cut := 0; cut < len(f); cut++ {
				c := s.Factory.NewCodec()
				if n, err := c.Split(f[:cut]); n != 0 || err != nil {
					t.Fatalf("frame %d cut %d: split of a partial frame gave n=%d err=%v", i, cut, n, err)
				}
				got, n, err := DecodeOne(c, f)
				if err != nil || n != len(f) || !equal(got, want) {
					t.Fatalf("frame %d cut %d: after more bytes: n=%d err=%v got %+v want %+v", i, cut, n, err, got, want)
				}
			}
			// One byte at a time on one codec.
			c := s.Factory.NewCodec()
			for k := 1; k <= len(f); k++ {
				n, err := c.Split(f[:k])
				if err != nil {
					t.Fatalf("frame %d trickled %d bytes: %v", i, k, err)
				}
				if n != 0 && k != len(f) {
					t.Fatalf("frame %d trickled %d bytes: split claimed a %d-byte frame", i, k, n)
				}
				if k == len(f) && n != len(f) {
					t.Fatalf("frame %d: whole frame trickled but split gave %d", i, n)
				}
			}
		}
	})
	t.Run("SeveralFramesInOneRead", func(t *testing.T) {
		for _, group := range [][][]byte{s.Requests, s.Responses} {
			if len(group) == 0 {
				continue
			}
			var buf []byte
			var want []Decoded
			for _, f := range group {
				d, _, err := DecodeOne(s.Factory.NewCodec(), f)
				if err != nil {
					t.Fatal(err)
				}
				for r := 0; r < 3; r++ {
					buf = append(buf, f...)
					want = append(want, d)
				}
			}
			c := s.Factory.NewCodec()
			for i, w := range want {
				got, n, err := DecodeOne(c, buf)
				if err != nil || n == 0 || !equal(got, w) {
					t.Fatalf("frame %d of %d: n=%d err=%v got %+v want %+v", i, len(want), n, err, got, w)
				}
				buf = buf[n:]
			}
			if len(buf) != 0 {
				t.Fatalf("%d bytes left over", len(buf))
			}
		}
	})
	t.Run("GarbageIsAnError", func(t *testing.T) {
		for i, g := range s.Garbage {
			c := s.Factory.NewCodec()
			_, n, err := DecodeOne(c, g)
			if err == nil {
				t.Errorf("garbage %d (% x): no error (n=%d)", i, g[:min(len(g), 16)], n)
			}
		}
	})
	t.Run("CorruptionNeverPanics", func(t *testing.T) {
		r := rand.New(rand.NewSource(1))
		for i, f := range all {
			for k := 0; k < 300; k++ {
				b := append([]byte(nil), f...)
				for j := 0; j < 1+r.Intn(4); j++ {
					b[r.Intn(len(b))] = byte(r.Intn(256))
				}
				if r.Intn(3) == 0 {
					b = b[:r.Intn(len(b))]
				}
				func() {
					defer func() {
						if p := recover(); p != nil {
							t.Fatalf("frame %d corrupted to % x: panic %v", i, b, p)
						}
					}()
					c := s.Factory.NewCodec()
					for len(b) > 0 {
						_, n, err := DecodeOne(c, b)
						if err != nil || n == 0 {
							return
						}
						b = b[n:]
					}
				}()
			}
		}
	})
	if !s.NoIDs {
		t.Run("RewriteID", func(t *testing.T) {
			for i, f := range all {
				c := s.Factory.NewCodec()
				m := decodeMsg(t, c, f)
				if m.Kind == codec.KindHeartbeat {
					continue
				}
				before, _, _ := DecodeOne(s.Factory.NewCodec(), f)
				newID := uint64(0x5a5a) + uint64(i)
				out, err := c.Encode(nil, m, &codec.Edit{SetID: true, ID: newID})
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				after, n, err := DecodeOne(s.Factory.NewCodec(), out)
				if err != nil || n != len(out) || after.ID != newID {
					t.Fatalf("frame %d: after id rewrite: n=%d/%d err=%v id=%d", i, n, len(out), err, after.ID)
				}
				after.ID = before.ID
				if !equal(before, after) {
					t.Errorf("frame %d: id rewrite changed more than the id: %+v vs %+v", i, before, after)
				}
				checkBody(t, s, f, out)
			}
		})
	}
	t.Run("HeaderEdit", func(t *testing.T) {
		for i, f := range s.Requests {
			c := s.Factory.NewCodec()
			m := decodeMsg(t, c, f)
			if m.Kind != codec.KindRequest && m.Kind != codec.KindOneway {
				continue
			}
			edit := &codec.Edit{Headers: []codec.KV{{Key: "x-metaproxy-test", Value: "v1"}, {Key: "x-metaproxy-two", Value: "ü2"}}}
			out, err := c.Encode(nil, m, edit)
			if s.NoHeaders {
				if err == nil {
					t.Errorf("frame %d: header edit on a protocol without headers did not fail", i)
				}
				continue
			}
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			m2 := decodeMsg(t, s.Factory.NewCodec(), out)
			for _, kv := range edit.Headers {
				if v, _ := m2.Meta.Get(kv.Key); v != kv.Value {
					t.Errorf("frame %d: header %s = %q after edit, want %q", i, kv.Key, v, kv.Value)
				}
			}
			if m2.ID != m.ID || m2.Kind != m.Kind {
				t.Errorf("frame %d: edit changed id or kind", i)
			}
			for _, kv := range m.Meta.All() {
				if v, _ := m2.Meta.Get(kv.Key); v != kv.Value {
					t.Errorf("frame %d: edit lost metadata %s=%q (now %q)", i, kv.Key, kv.Value, v)
				}
			}
			// Overwrite an existing header.
			out2, err := c.Encode(nil, m2, &codec.Edit{Headers: []codec.KV{{Key: "x-metaproxy-test", Value: "v2"}}})
			if err != nil {
				t.Fatal(err)
			}
			m3 := decodeMsg(t, s.Factory.NewCodec(), out2)
			if v, _ := m3.Meta.Get("x-metaproxy-test"); v != "v2" {
				t.Errorf("frame %d: overwrite gave %q", i, v)
			}
			checkBody(t, s, f, out)
			checkBody(t, s, f, out2)
		}
	})
	t.Run("ErrorReply", func(t *testing.T) {
		for i, f := range s.Requests {
			c := s.Factory.NewCodec()
			m := decodeMsg(t, c, f)
			if m.Kind != codec.KindRequest {
				continue
			}
			for et := codec.ErrRouteNotFound; et < codec.NumErrorTypes; et++ {
				out := c.ErrorReply(nil, m, &codec.Error{Type: et, Message: "conformance " + et.String()})
				if len(out) == 0 {
					t.Fatalf("frame %d: empty error reply for %v", i, et)
				}
				d, n, err := DecodeOne(s.Factory.NewCodec(), out)
				if err != nil || n != len(out) {
					t.Fatalf("frame %d %v: reply does not decode: n=%d/%d err=%v", i, et, n, len(out), err)
				}
				if d.Kind != codec.KindResponse || d.Status == codec.StatusOK || (!s.NoIDs && d.ID != m.ID) {
					t.Errorf("frame %d %v: reply decoded as %+v, want an error response with id %d", i, et, d, m.ID)
				}
			}
		}
	})
	if s.Streams {
		runStreams(t, s)
	}
	t.Run("HeartbeatReply", func(t *testing.T) {
		for i, f := range s.Requests {
			c := s.Factory.NewCodec()
			m := decodeMsg(t, c, f)
			if m.Kind != codec.KindHeartbeat || !m.HeartbeatRequest {
				continue
			}
			out := c.HeartbeatReply(nil, m)
			d, n, err := DecodeOne(s.Factory.NewCodec(), out)
			if err != nil || n != len(out) || d.Kind != codec.KindHeartbeat || d.ID != m.ID {
				t.Errorf("frame %d: heartbeat reply %+v n=%d err=%v", i, d, n, err)
			}
		}
	})
}

func checkBody(t *testing.T, s Suite, orig, edited []byte) {
	t.Helper()
	if s.Body == nil {
		return
	}
	a, err := s.Body(orig)
	if err != nil {
		t.Fatalf("body of original: %v", err)
	}
	b, err := s.Body(edited)
	if err != nil {
		t.Fatalf("body of edited frame: %v", err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("edit changed the body")
	}
}

// FuzzDecode feeds data to a fresh codec frame after frame: it must never
// panic, never claim more bytes than it was given, and every frame it accepts
// must re-encode to the same bytes. Bytes Split refuses go to RejectReply
// when the codec is a codec.Rejecter, which must not panic either.
func FuzzDecode(t *testing.T, f codec.Factory, data []byte) {
	c := f.NewCodec()
	for len(data) > 0 {
		n, err := c.Split(data)
		if err != nil {
			if r, ok := c.(codec.Rejecter); ok {
				_ = r.RejectReply(nil, data, &codec.Error{Type: codec.ErrBadRequest, Message: "fuzz"})
			}
			return
		}
		if n == 0 {
			return
		}
		if n < 0 || n > len(data) {
			t.Fatalf("split returned %d for %d bytes", n, len(data))
		}
		frame := append([]byte(nil), data[:n]...)
		m := &codec.Message{Frame: frame}
		if err := c.Decode(frame, m); err == nil {
			out, err := c.Encode(nil, m, nil)
			if err != nil || !bytes.Equal(out, frame) {
				t.Fatalf("accepted frame does not re-encode to itself: err=%v", err)
			}
			if m.Kind == codec.KindRequest {
				_ = c.ErrorReply(nil, m, &codec.Error{Type: codec.ErrInternal, Message: "fuzz"})
				_, _ = c.Encode(nil, m, &codec.Edit{SetID: true, ID: 7, Headers: []codec.KV{{Key: "k", Value: "v"}}})
			}
		}
		data = data[n:]
	}
}
