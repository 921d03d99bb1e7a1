package thrift

import (
	"testing"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codec/codectest"
)

// TestRejectReply: a call over max_frame_bytes, refused by Split, is answered
// with a TApplicationException carrying its sequence id, in its transport and
// protocol; THeader frames and oneway calls are not answered.
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
				if want.Kind != codec.KindRequest || w.transport == TransportHeader {
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
				if err != nil || n != len(out) || d.Kind != codec.KindResponse || d.Status != codec.StatusError || d.ID != want.ID {
					t.Errorf("request %d: reply %+v n=%d/%d err=%v, want an exception for seq %d", i, d, n, len(out), err, want.ID)
				}
				if got := metaValue(d.Meta, codec.KeyMethod); got != want.Meta.Value(codec.KeyMethod) {
					t.Errorf("request %d: reply for method %q, want %q", i, got, want.Meta.Value(codec.KeyMethod))
				}
				answered++
			}
			if w.transport != TransportHeader && answered == 0 {
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
