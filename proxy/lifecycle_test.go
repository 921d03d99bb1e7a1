package proxy

import "testing"

// TestHalfCloseAnswersInFlight pins reliability defect 8's half-close: a
// client that sends requests and then half-closes lost every answer (0 of
// 20 delivered). The session now answers what is in flight, then closes.
func TestHalfCloseAnswersInFlight(t *testing.T) {
	for _, mux := range []bool{true, false} {
		e := newTestEnv(t, mux)
		e.a.mu.Lock()
		answer := e.a.handler
		e.a.handler = nil // answered by hand below
		e.a.mu.Unlock()
		down := newMemConn()
		s := e.srv.NewSession(down, "client")
		const n = 20
		var b []byte
		for i := range n {
			b = append(b, req(uint64(i+1), "a1")...)
		}
		s.OnData(b)
		s.OnReadClosed()
		if down.isClosed() {
			t.Fatalf("mux=%v: closed with %d requests in flight", mux, n)
		}
		eventually(t, "the requests reach the upstream", func() bool {
			e.a.mu.Lock()
			defer e.a.mu.Unlock()
			return len(e.a.seen) == n
		})
		e.a.mu.Lock()
		for i, m := range e.a.seen {
			e.a.seenOn[i].h.OnData(answer(m))
		}
		e.a.mu.Unlock()
		if fs := down.waitFrames(t, n); len(fs) != n {
			t.Fatalf("mux=%v: %d answers, want %d", mux, len(fs), n)
		}
		eventually(t, "the connection closes after the last answer", down.isClosed)
	}
	// Nothing in flight: the half-close closes at once.
	e := newTestEnv(t, true)
	down := newMemConn()
	e.srv.NewSession(down, "idle").OnReadClosed()
	if !down.isClosed() {
		t.Fatal("an idle half-closed connection stays open")
	}
}
