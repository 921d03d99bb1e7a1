package thrift

import (
	"encoding/binary"
	"fmt"
	"strings"

	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// TestRejectReply: a call over max_frame_bytes, refused by Split, is answered
// with a TApplicationException carrying its sequence id, in its transport and
// protocol (THeader, framed or not, included); oneway calls are not
// answered.
func TestRejectReply(t *testing.T) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			reqs, _ := w.golden(t)
			cfg := w.configs()[0]
			cfg.MaxFrameBytes = 64 // the smallest limit; the big golden calls exceed it
			small, err := NewFactory(cfg)
			if err != nil {
				t.Fatal(err)
			}
			full, err := NewFactory(w.configs()[0])
			if err != nil {
				t.Fatal(err)
			}
			answered := 0
			for i, f := range reqs {
				var want codec.Message
				want.Frame = f
				fc := full.NewCodec()
				if _, err := fc.Split(f); err != nil {
					t.Fatal(err)
				}
				if err := fc.Decode(f, &want); err != nil {
					t.Fatal(err)
				}
				c := small.NewCodec()
				if n, err := c.Split(f); err == nil {
					if n != len(f) {
						t.Fatalf("request %d: split %d of %d bytes", i, n, len(f))
					}
					continue // under the limit
				}
				out := c.(codec.Rejecter).RejectReply(nil, f, &codec.Error{Type: codec.ErrBadRequest, Message: "too large"})
				if want.Kind != codec.KindRequest {
					if len(out) != 0 {
						t.Errorf("request %d (%v, %s): unexpected reply", i, want.Kind, w.name)
					}
					continue
				}
				if len(out) == 0 {
					// The head itself may be what broke the limit (a long
					// method name): no reply is then possible.
					continue
				}
				d, n, err := codectest.DecodeOne(full.NewCodec(), out)
				if err != nil || n != len(out) || d.Kind != codec.KindResponse || d.Status != codec.StatusServerFailure || d.ID != want.ID || d.Variant != want.Variant {
					t.Errorf("request %d: reply %+v n=%d/%d err=%v, want an exception for seq %d", i, d, n, len(out), err, want.ID)
				}
				if got := metaValue(d.Meta, codec.KeyMethod); got != want.Meta.Value(codec.KeyMethod) {
					t.Errorf("request %d: reply for method %q, want %q", i, got, want.Meta.Value(codec.KeyMethod))
				}
				answered++
			}
			if answered == 0 {
				t.Error("no call was answered")
			}
		})
	}
}

// metaValue returns the value of key in kvs, or "".
func metaValue(kvs []codec.KV, key string) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

// withLength returns a copy of frame f of transport t declaring n bytes:
// its length word set to n, and with framed_header the THeader length
// inside to n-4.
func withLength(f []byte, t Transport, n uint32) []byte {
	g := append([]byte(nil), f...)
	binary.BigEndian.PutUint32(g, n)
	if t == TransportFramedHeader {
		binary.BigEndian.PutUint32(g[4:], n-4)
	}
	return g
}

// TestRejectReplyHugeFrames: a framed call declaring any length from just
// over max_frame_bytes up to 0x7fffffff, the largest a Thrift length can be,
// is refused by Split and answered with a TApplicationException, whether
// the transport was detected or pinned. Lengths from 0x80000000 up are no
// frame length (Apache's libraries read them as negative): they are only
// Thrift as the first word of an unframed strict binary (80 01) or compact
// (82 x1) message, and are answered as such.
func TestRejectReplyHugeFrames(t *testing.T) {
	lengths := []uint32{defaultMaxFrame + 1, headerMaxFrame, headerMaxFrame + 1, 0x40000000, 0x7ffffffe, 0x7fffffff}
	for _, w := range wires {
		if w.transport == TransportUnframed {
			continue
		}
		reqs, _ := w.golden(t)
		var want codec.Message
		want.Frame = reqs[0] // sayHello, seq 1
		if err := mustFactory(t, Config{}).NewCodec().Decode(reqs[0], &want); err != nil {
			t.Fatal(err)
		}
		for _, cfg := range w.configs() {
			f := mustFactory(t, cfg)
			for _, n := range lengths {
				// On a fresh connection (detection refuses the frame) and
				// after a first frame (the frame split refuses it).
				for _, first := range [][]byte{nil, reqs[1]} {
					name := fmt.Sprintf("%s %+v length %#x after %d bytes", w.name, cfg, n, len(first))
					big := withLength(reqs[0], w.transport, n)
					c := f.NewCodec()
					if first != nil {
						decodeFrame(t, c, first)
					}
					if k, err := c.Split(big); err == nil {
						t.Errorf("%s: split %d, want an error", name, k)
						continue
					} else if n <= maxLength && !strings.Contains(err.Error(), "max_frame_bytes") && !strings.Contains(err.Error(), "out of range") {
						t.Errorf("%s: split error %q does not say the frame is too large", name, err)
					}
					out := c.(codec.Rejecter).RejectReply(nil, big, codec.Errorf(codec.ErrBadRequest, "too large"))
					d, k, err := codectest.DecodeOne(f.NewCodec(), out)
					if err != nil || k != len(out) || d.Kind != codec.KindResponse || d.Status != codec.StatusServerFailure || d.ID != want.ID || d.Variant != want.Variant {
						t.Errorf("%s: reply % x: %+v n=%d err=%v, want an exception for seq %d", name, out[:min(len(out), 16)], d, k, err, want.ID)
					}
				}
			}
		}
	}
	// 0x80000000 and above: not a frame length, on a fresh connection or
	// after a first frame.
	for _, name := range []string{"framed-binary", "framed-compact", "header-binary", "framed-header-compact"} {
		w := wireNamed(t, name)
		reqs, _ := w.golden(t)
		for _, n := range []uint32{0x80000000, 0x80000001, 0x8000ffff, 0xffffffff, 0x81000000} {
			big := withLength(reqs[0], w.transport, n)
			for _, cfg := range []Config{{}, {Protocol: w.protocol.String()}, {Transport: w.transport.String()}} {
				for _, first := range [][]byte{nil, reqs[1]} {
					c := mustFactory(t, cfg).NewCodec()
					if first != nil {
						decodeFrame(t, c, first)
					}
					if k, err := c.Split(big); err == nil {
						t.Errorf("%s length %#x, %+v: split %d, want an error", name, n, cfg, k)
					}
					if out := c.(codec.Rejecter).RejectReply(nil, big, codec.Errorf(codec.ErrBadRequest, "x")); len(out) != 0 {
						t.Errorf("%s length %#x, %+v, after %d bytes: answered % x", name, n, cfg, len(first), out)
					}
				}
			}
		}
	}
	// 80 01 is an unframed strict binary message, also when it is too big:
	// answered unframed.
	unframed, _ := wireNamed(t, "unframed-binary").golden(t)
	c := mustFactory(t, Config{MaxFrameBytes: 64}).NewCodec()
	if _, err := c.Split(unframed[3]); err == nil {
		t.Fatal("a large unframed call was accepted with max_frame_bytes 64")
	}
	out := c.(codec.Rejecter).RejectReply(nil, unframed[3], codec.Errorf(codec.ErrBadRequest, "x"))
	d, k, err := codectest.DecodeOne(mustFactory(t, Config{}).NewCodec(), out)
	if err != nil || k != len(out) || d.Variant != Variant(TransportUnframed, ProtocolBinary) || d.ID != 300 || d.Status != codec.StatusServerFailure {
		t.Errorf("unframed: reply %+v n=%d err=%v", d, k, err)
	}
}
