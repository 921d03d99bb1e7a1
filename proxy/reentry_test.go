package proxy

import (
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// withDeadline runs f and fails t if it does not return within d: the engine
// deadlocked.
func withDeadline(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v: deadlock", what, d)
	}
}

// TestUpstreamWriteFailureDoesNotDeadlock pins reliability defect 1: a write
// to an upstream that fails while the session flushes its batch fails the
// upstream, whose failure handling delivers errors back to the same session.
// That must neither re-take the session's lock nor lose the error replies,
// and the listener must serve again once the upstream is back.
func TestUpstreamWriteFailureDoesNotDeadlock(t *testing.T) {
	for _, mux := range []bool{true, false} {
		e := newTestEnv(t, mux)
		down := newMemConn()
		s := e.srv.NewSession(down, "client")
		// Two requests open two upstream connections: two exclusive
		// connections for two requests at once, or both multiplexed slots
		// for two batches (a batch's requests share a connection).
		if mux {
			s.OnData(req(1, "a1"))
			s.OnData(req(10, "a1"))
		} else {
			s.OnData(append(req(1, "a1"), req(10, "a1")...))
		}
		down.waitFrames(t, 2)
		// The upstream dies without the host reporting it yet: the next
		// write to it fails inside the session's flush.
		e.a.mu.Lock()
		conns := e.a.conns
		e.a.mu.Unlock()
		for _, u := range conns {
			u.down.Close(false)
		}
		// One request on each dead connection (one batch each, when
		// multiplexed).
		withDeadline(t, "OnData", 5*time.Second, func() {
			if mux {
				s.OnData(req(2, "a1"))
				s.OnData(req(3, "a2"))
			} else {
				s.OnData(append(req(2, "a1"), req(3, "a2")...))
			}
		})
		fs := down.waitFrames(t, 4)
		for _, f := range fs[2:] {
			if f.Status != codec.StatusError || f.Meta.Value("error") != codec.ErrUnavailable.String() {
				t.Fatalf("mux=%v: request on the dead upstream: status %v %v, want an unavailable error", mux, f.Status, f.Meta.All())
			}
		}
		// The upstream is back: the same session is served again.
		withDeadline(t, "OnData", 5*time.Second, func() { s.OnData(req(4, "a1")) })
		fs = down.waitFrames(t, 5)
		if f := fs[4]; f.ID != 4 || f.Status != codec.StatusOK {
			t.Fatalf("mux=%v: after recovery: id %d status %v %v", mux, f.ID, f.Status, f.Meta.All())
		}
		withDeadline(t, "Close", 5*time.Second, s.Close)
	}
}
