package proxy

import (
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

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

// serialKV is the test protocol with serial clients (codec.Serial).
type serialKV struct{ kvCodec }

func (serialKV) SerialClients() bool { return true }

// TestNoLocalReplyForSupersededCall pins reliability defect 6: a oneway
// call that looks like a two-way one (a Thrift CALL of a method missing
// from oneway_methods) timed out and its timeout reply reached a client
// that was not waiting for it, which read it as the answer to its next
// call. On a serial protocol a call the client has sent another call after
// gets no local reply; real answers still pass, and a call nothing came
// after still gets its timeout.
func TestNoLocalReplyForSupersededCall(t *testing.T) {
	for _, serial := range []bool{true, false} {
		e := newTestEnvWith(t, false, func(c *Config) {
			c.RequestTimeout = 100 * time.Millisecond
			if serial {
				c.Codec = codec.FactoryFunc(func() codec.Codec { return serialKV{} })
			}
		})
		echo := echoHandler("a")
		e.a.mu.Lock()
		e.a.handler = func(m codec.Message) []byte { // "a1" is oneway in disguise
			if m.Meta.Value("method") == "a1" {
				return nil
			}
			return echo(m)
		}
		e.a.mu.Unlock()
		down := newMemConn()
		s := e.srv.NewSession(down, "client")
		s.OnData(req(7, "a1"))
		s.OnData(req(8, "a2"))
		if fs := down.waitFrames(t, 1); fs[0].ID != 8 || fs[0].Status != codec.StatusOK {
			t.Fatalf("serial=%v: answer to the second call: id %d %v", serial, fs[0].ID, fs[0].Meta.All())
		}
		eventually(t, "the first call times out", func() bool { return e.srv.Stats().RequestTimeout.Load() == 1 })
		s.OnData(req(9, "a1")) // nothing comes after: its timeout is awaited
		fs := down.waitFrames(t, 2)
		if serial {
			if len(fs) != 2 || fs[1].ID != 9 || fs[1].Meta.Value("error") != codec.ErrTimeout.String() {
				t.Fatalf("serial: frames %v, want the answer to 8 then the timeout of 9 only", fs)
			}
			if n := e.srv.Stats().LocalReplySuppressed.Load(); n != 1 {
				t.Errorf("local_reply_suppressed = %d, want 1", n)
			}
		} else if fs[1].ID != 7 {
			t.Fatalf("not serial: the timeout of 7 is sent (the client may pipeline): got id %d", fs[1].ID)
		}
	}
}

// TestInlineResume: a filter that calls Resume before returning Pause
// (inline, as a cache hit in a rate-limit filter would) used to deadlock
// its connection. It now goes on as if the filter had continued; Reply then
// Resume inline answers the call.
func TestInlineResume(t *testing.T) {
	inline := filter.Func(func(x *filter.Exchange) filter.Status {
		if x.Request.Meta.Value("x-reject") != "" {
			x.Reply(codec.ErrOverloaded, "no")
		}
		x.Resume()
		return filter.Pause
	})
	e := newTestEnv(t, true, filter.Named{Name: "inline", Filter: inline})
	down := newMemConn()
	s := e.srv.NewSession(down, "client")
	withDeadline(t, "OnData", 5*time.Second, func() { s.OnData(req(1, "a1")) })
	if f := down.waitFrames(t, 1)[0]; f.Status != codec.StatusOK {
		t.Fatalf("inline resume: %v", f.Meta.All())
	}
	withDeadline(t, "OnData", 5*time.Second, func() { s.OnData(req(2, "a1", "x-reject=1")) })
	if f := down.waitFrames(t, 2)[1]; f.Meta.Value("error") != codec.ErrOverloaded.String() {
		t.Fatalf("inline reply and resume: %v", f.Meta.All())
	}
}
