package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/transport"
)

// TestClientCloseCancelsRequests pins reliability defect 4's first part:
// requests abandoned by their client were never released (11 → 95 MiB and
// 47,825 active requests in 10 s). When a client closes, the requests an
// upstream still holds for it are cancelled: counted, no longer active, no
// longer counted on their host, and an exclusive connection, which would
// take the late answer for its next request's, is closed.
// cx_destroy_remote_with_active_rq counts connections, not requests.
func TestClientCloseCancelsRequests(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("mux=%v", mux), func(t *testing.T) {
			e := newTestEnv(t, mux)
			e.a.mu.Lock()
			e.a.handler = nil // never answers
			e.a.mu.Unlock()
			down := newMemConn()
			s := e.srv.NewSession(down, "client")
			const n = 10
			var b []byte
			for i := range n {
				b = append(b, req(uint64(i+1), "a1")...)
			}
			s.OnData(b)
			eventually(t, "requests reach the upstream", func() bool {
				e.a.mu.Lock()
				defer e.a.mu.Unlock()
				return len(e.a.seen) == n
			})
			s.OnClose()
			st := e.srv.Stats()
			if a := st.RequestActive.Load(); a != 0 {
				t.Errorf("request_active = %d after the client closed, want 0", a)
			}
			if c := st.RequestCancelled.Load(); c != n {
				t.Errorf("request_cancelled = %d, want %d", c, n)
			}
			if c := st.CxDestroyRemoteWithActiveRq.Load(); c != 1 {
				t.Errorf("cx_destroy_remote_with_active_rq = %d, want 1 (one connection)", c)
			}
			if h := e.srv.refs["ca"].cl.Hosts()[0]; h.Active() != 0 {
				t.Errorf("host still counts %d requests in flight", h.Active())
			}
			e.a.mu.Lock()
			conns := e.a.conns
			e.a.mu.Unlock()
			for _, u := range conns {
				if closed := u.down.isClosed(); closed == mux {
					t.Errorf("upstream connection closed = %v, want %v (exclusive connections are closed)", closed, !mux)
				}
			}
		})
	}
}

// TestInflightBounds: over the bound on requests in flight per connection
// or per listener, a request gets a native overloaded error at once; other
// requests are untouched.
func TestInflightBounds(t *testing.T) {
	e := newTestEnvWith(t, true, func(c *Config) {
		c.MaxActiveRequestsPerConnection = 3
		c.MaxActiveRequests = 5
	})
	e.a.mu.Lock()
	e.a.handler = nil
	e.a.mu.Unlock()
	one, two := newMemConn(), newMemConn()
	s1, s2 := e.srv.NewSession(one, "one"), e.srv.NewSession(two, "two")
	var b []byte
	for i := range 4 {
		b = append(b, req(uint64(i+1), "a1")...)
	}
	s1.OnData(b) // 3 in flight, the 4th over the connection's bound
	if fs := one.waitFrames(t, 1); fs[0].ID != 4 || fs[0].Meta.Value("error") != codec.ErrOverloaded.String() {
		t.Fatalf("4th request on a connection bound to 3: %v", fs[0].Meta.All())
	}
	s2.OnData(b[:3*len(req(1, "a1"))]) // 2 more fit the listener's 5
	if fs := two.waitFrames(t, 1); fs[0].ID != 3 || fs[0].Meta.Value("error") != codec.ErrOverloaded.String() {
		t.Fatalf("6th request on a listener bound to 5: %v", fs[0].Meta.All())
	}
	if o := e.srv.Stats().RequestOverflow.Load(); o != 2 {
		t.Errorf("request_overflow = %d, want 2", o)
	}
	if a := e.srv.Stats().RequestActive.Load(); a != 5 {
		t.Errorf("request_active = %d, want 5", a)
	}
	// Freed slots are usable again.
	s1.OnClose()
	s2.OnData(req(9, "a1"))
	eventually(t, "the request after slots were freed reaches the upstream", func() bool {
		e.a.mu.Lock()
		defer e.a.mu.Unlock()
		return len(e.a.seen) == 6
	})
}

// TestBufferedBytesBound pins defect 4's last part: partial frames across
// a listener's connections are bounded (64 connections each holding an
// 8 MiB partial frame cost 1 GiB). The connection whose partial frame
// would cross the bound is closed; the others keep theirs and complete.
func TestBufferedBytesBound(t *testing.T) {
	e := newTestEnvWith(t, true, func(c *Config) { c.MaxBufferedBytesTotal = 1000 })
	big := req(1, "a1", "pad="+string(make([]byte, 700)))
	one, two := newMemConn(), newMemConn()
	s1, s2 := e.srv.NewSession(one, "one"), e.srv.NewSession(two, "two")
	s1.OnData(big[:600])
	s2.OnData(big[:600])
	if !two.isClosed() {
		t.Fatal("the connection over the listener's buffered bytes is open")
	}
	if one.isClosed() {
		t.Fatal("the connection within the bound was closed")
	}
	s1.OnData(big[600:])
	if fs := one.waitFrames(t, 1); fs[0].Status != codec.StatusOK {
		t.Fatalf("completed frame: %v", fs[0].Meta.All())
	}
	if n := e.srv.buffered.Load(); n != 0 {
		t.Errorf("buffered bytes = %d with no partial frame held", n)
	}
	s1.OnData(big[:100])
	s1.OnClose()
	if n := e.srv.buffered.Load(); n != 0 {
		t.Errorf("buffered bytes = %d after the last connection closed", n)
	}
}

// TestFrameReceiveTimeout pins reliability defect 8's slowloris: a client
// trickling one byte at a time was never reaped, since every byte counts
// for idle_timeout. A frame not complete within FrameReceiveTimeout of its
// first byte closes the connection; a frame that completes in time, even
// over several reads, does not.
func TestFrameReceiveTimeout(t *testing.T) {
	e := newTestEnvWith(t, true, func(c *Config) { c.FrameReceiveTimeout = 200 * time.Millisecond })
	slow, fast := newMemConn(), newMemConn()
	ss, fs := e.srv.NewSession(slow, "slow"), e.srv.NewSession(fast, "fast")
	f := req(1, "a1", "pad=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	done := make(chan struct{})
	go func() { // one byte every 20 ms: the frame takes a second
		defer close(done)
		for i := range f[:len(f)-1] {
			if slow.isClosed() {
				return
			}
			ss.OnData(f[i : i+1])
			time.Sleep(20 * time.Millisecond)
		}
	}()
	fs.OnData(f[:10])
	fs.OnData(f[10:])
	if got := fast.waitFrames(t, 1); got[0].Status != codec.StatusOK {
		t.Fatalf("frame sent in two reads: %v", got[0].Meta.All())
	}
	eventually(t, "the trickling connection is closed", slow.isClosed)
	<-done
	if n := e.srv.Stats().FrameReceiveTimeout.Load(); n != 1 {
		t.Errorf("frame_receive_timeout = %d, want 1", n)
	}
	if fast.isClosed() {
		t.Error("the connection that sent its frame in time was closed")
	}
}

// slowConn is a client connection whose host cut it off for not reading.
type slowConn struct{ *memConn }

func (slowConn) Write([]byte) error { return fmt.Errorf("write: %w", transport.ErrSlowPeer) }

// TestSlowReaderCounted: a client the host cuts off at its write buffer
// bound (proxy.ErrSlowPeer) is closed and counted as cx_slow_reader.
func TestSlowReaderCounted(t *testing.T) {
	e := newTestEnv(t, true)
	down := slowConn{newMemConn()}
	s := e.srv.NewSession(down, "slow")
	s.OnData(req(1, "a1"))
	eventually(t, "the slow reader is closed", down.isClosed)
	if n := e.srv.Stats().CxSlowReader.Load(); n != 1 {
		t.Errorf("cx_slow_reader = %d, want 1", n)
	}
}

// TestUpstreamSlowReaderCounted: an upstream the host cuts off at its write
// buffer bound fails its calls natively and is counted as
// upstream_cx_slow_reader.
func TestUpstreamSlowReaderCounted(t *testing.T) {
	e := newTestEnv(t, false) // exclusive: the next call reuses the connection
	down := newMemConn()
	s := e.srv.NewSession(down, "client")
	s.OnData(req(1, "a1"))
	down.waitFrames(t, 1)
	e.a.mu.Lock()
	up := e.a.conns[0].down
	e.a.mu.Unlock()
	up.mu.Lock()
	up.writeErr = fmt.Errorf("write: %w", transport.ErrSlowPeer)
	up.mu.Unlock()
	s.OnData(req(2, "a1"))
	if f := down.waitFrames(t, 2)[1]; f.Meta.Value("error") != codec.ErrUnavailable.String() {
		t.Fatalf("call on the cut-off upstream: %v", f.Meta.All())
	}
	if n := e.srv.Stats().UpstreamCxSlowReader.Load(); n != 1 {
		t.Errorf("upstream_cx_slow_reader = %d, want 1", n)
	}
}
