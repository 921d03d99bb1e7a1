package proxy

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/router"
)

type testEnv struct {
	srv    *Server
	dialer *memDialer
	a, b   *memServer
}

func newTestEnv(t *testing.T, mux bool, filters ...filter.Named) *testEnv {
	t.Helper()
	return newTestEnvWith(t, mux, nil, filters...)
}

// newTestEnvWith is newTestEnv with edit applied to the config.
func newTestEnvWith(t *testing.T, mux bool, edit func(*Config), filters ...filter.Named) *testEnv {
	t.Helper()
	e := &testEnv{
		a: &memServer{handler: echoHandler("a")},
		b: &memServer{handler: echoHandler("b")},
	}
	e.dialer = &memDialer{servers: map[string]*memServer{"10.0.0.1:1": e.a, "10.0.0.2:1": e.b}}
	routes := &router.Table{Name: "test", Routes: []*router.Route{
		{Name: "to-b", Matchers: []router.Matcher{{Key: "method", Kind: router.Exact, Value: "b"}}, Cluster: "cb",
			RequestMutation: []codec.KV{{Key: "x-added", Value: "yes"}}},
		{Name: "to-a", Matchers: []router.Matcher{{Key: "method", Kind: router.Prefix, Value: "a"}}, Cluster: "ca"},
		{Name: "to-dead", Matchers: []router.Matcher{{Key: "method", Kind: router.Exact, Value: "dead"}}, Cluster: "cdead"},
	}}
	cfg := Config{
		StatPrefix: "test", Protocol: "kv", Codec: codec.FactoryFunc(func() codec.Codec { return kvCodec{} }),
		Multiplexing: mux, Routes: routes, Filters: filters,
		Clusters: []cluster.Config{
			{Name: "ca", Type: cluster.Static, ConnectTimeout: time.Second, Endpoints: []cluster.Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}}},
			{Name: "cb", Type: cluster.Static, ConnectTimeout: time.Second, Endpoints: []cluster.Endpoint{{Host: "10.0.0.2", Port: 1, Weight: 1}}},
			{Name: "cdead", Type: cluster.Static, ConnectTimeout: time.Second, Endpoints: []cluster.Endpoint{{Host: "10.0.0.9", Port: 1, Weight: 1}}},
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg, Options{Dialer: e.dialer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.srv = srv
	return e
}

func req(id uint64, method string, extra ...string) []byte {
	body := "method=" + method
	for _, x := range extra {
		body += ";" + x
	}
	return kvFrame(0, id, body)
}

func TestRequestResponse(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("mux=%v", mux), func(t *testing.T) {
			e := newTestEnv(t, mux)
			down := newMemConn()
			s := e.srv.NewSession(down, "client")
			s.OnData(append(req(7, "a1"), req(8, "b")...))
			fs := down.waitFrames(t, 2)
			got := map[uint64]string{}
			for _, f := range fs {
				if f.Status != codec.StatusOK {
					t.Fatalf("error response: %v", f.Meta.All())
				}
				got[f.ID] = f.Meta.Value("from")
			}
			if got[7] != "a" || got[8] != "b" {
				t.Fatalf("responses by id: %v", got)
			}
			// The route's request mutation reached the upstream as a header.
			e.b.mu.Lock()
			defer e.b.mu.Unlock()
			if v := e.b.seen[0].Meta.Value("x-added"); v != "yes" {
				t.Errorf("request mutation not applied upstream: %v", e.b.seen[0].Meta.All())
			}
		})
	}
}

func TestMultiplexedIDsDoNotCollide(t *testing.T) {
	e := newTestEnv(t, true)
	const clients, calls = 20, 50
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			down := newMemConn()
			s := e.srv.NewSession(down, fmt.Sprintf("client-%d", c))
			for i := range calls {
				// Every client uses the same ids, and tags its calls.
				s.OnData(req(uint64(i), "a", fmt.Sprintf("x-who=%d-%d", c, i)))
			}
			fs := down.waitFrames(t, calls)
			for _, f := range fs {
				if want := fmt.Sprintf("%d-%d", c, f.ID); f.Meta.Value("x-who") != want {
					t.Errorf("client %d id %d got the answer for %q", c, f.ID, f.Meta.Value("x-who"))
				}
			}
		}()
	}
	wg.Wait()
	e.a.mu.Lock()
	defer e.a.mu.Unlock()
	type connID struct {
		c  *memUpstream
		id uint64
	}
	ids := map[connID]bool{}
	for i, m := range e.a.seen {
		k := connID{e.a.seenOn[i], m.ID}
		if ids[k] {
			t.Fatalf("upstream saw id %d twice on one connection", m.ID)
		}
		ids[k] = true
	}
	if n := len(e.a.conns); n > DefaultUpstreamConnsPerHost {
		t.Errorf("%d upstream connections for %d clients, want at most %d", n, clients, DefaultUpstreamConnsPerHost)
	}
	if got := e.srv.InFlight(); got != 0 {
		t.Errorf("in flight after all answers: %d", got)
	}
}

func TestLocalErrors(t *testing.T) {
	e := newTestEnv(t, true)
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	s.OnData(req(1, "nomatch"))
	s.OnData(req(2, "dead"))
	fs := down.waitFrames(t, 2)
	want := map[uint64]string{1: "route_not_found", 2: "unavailable"}
	for _, f := range fs {
		if f.Status != codec.StatusError || f.Meta.Value("error") != want[f.ID] {
			t.Errorf("id %d: %v, want error %s", f.ID, f.Meta.All(), want[f.ID])
		}
	}
	if down.isClosed() {
		t.Error("a local error closed the connection")
	}
}

func TestUpstreamCloseFailsPending(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("mux=%v", mux), func(t *testing.T) {
			e := newTestEnv(t, mux)
			e.a.handler = nil // never answers
			down := newMemConn()
			s := e.srv.NewSession(down, "c")
			s.OnData(req(1, "a"))
			s.OnData(req(2, "a"))
			eventually(t, "both requests reach the server", func() bool {
				e.a.mu.Lock()
				defer e.a.mu.Unlock()
				return len(e.a.seen) == 2
			})
			e.a.kill()
			fs := down.waitFrames(t, 2)
			for _, f := range fs {
				if f.Meta.Value("error") != "unavailable" {
					t.Errorf("id %d: %v", f.ID, f.Meta.All())
				}
			}
			// The server is back: the next call succeeds on a new connection.
			e.a.mu.Lock()
			e.a.handler = echoHandler("a")
			e.a.mu.Unlock()
			s.OnData(req(3, "a"))
			fs = down.waitFrames(t, 3)
			if fs[2].ID != 3 || fs[2].Status != codec.StatusOK {
				t.Errorf("after restart: %+v", fs[2].Meta.All())
			}
		})
	}
}

func TestHeartbeatOnewayMalformedTrickle(t *testing.T) {
	e := newTestEnv(t, true)
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	s.OnData(kvFrame(4, 99, ""))
	fs := down.waitFrames(t, 1)
	if fs[0].Kind != codec.KindHeartbeat || fs[0].ID != 99 {
		t.Fatalf("heartbeat reply: %+v", fs[0])
	}
	// Oneway: forwarded, no reply.
	s.OnData(kvFrame(3, 5, "method=a"))
	// Trickle a request one byte at a time.
	for _, b := range req(6, "a") {
		s.OnData([]byte{b})
	}
	fs = down.waitFrames(t, 2)
	if len(fs) != 2 || fs[1].ID != 6 {
		t.Fatalf("after trickle: %d frames", len(fs))
	}
	eventually(t, "oneway request forwarded", func() bool {
		e.a.mu.Lock()
		defer e.a.mu.Unlock()
		for _, m := range e.a.seen {
			if m.Kind == codec.KindOneway {
				return true
			}
		}
		return false
	})
	// A malformed frame closes only its own connection.
	other := newMemConn()
	s2 := e.srv.NewSession(other, "c2")
	s2.OnData([]byte{0, 0, 0, 1, 9})
	if !other.isClosed() {
		t.Error("malformed frame did not close its connection")
	}
	s.OnData(req(7, "a"))
	if fs = down.waitFrames(t, 3); fs[2].ID != 7 || down.isClosed() {
		t.Error("the other connection was affected")
	}
}

// pauser pauses every request and resumes it from another goroutine.
type pauser struct{ reject atomic.Bool }

func (p *pauser) OnRequest(x *filter.Exchange) filter.Status {
	go func() {
		time.Sleep(time.Millisecond)
		if p.reject.Load() {
			x.Reply(codec.ErrOverloaded, "slow down")
		}
		x.Resume()
	}()
	return filter.Pause
}

func TestFiltersPauseResumeStopPanic(t *testing.T) {
	p := &pauser{}
	var responses atomic.Int32
	panicky := filter.Func(func(x *filter.Exchange) filter.Status {
		if x.Request.Meta.Value("x-panic") != "" {
			panic("filter bug")
		}
		return filter.Continue
	})
	e := newTestEnv(t, true, filter.Named{Name: "pause", Filter: p}, filter.Named{Name: "panicky", Filter: panicky}, filter.Named{Name: "count", Filter: respCounter{&responses}})
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	s.OnData(req(1, "a"))
	fs := down.waitFrames(t, 1)
	if fs[0].Status != codec.StatusOK {
		t.Fatalf("paused request: %v", fs[0].Meta.All())
	}
	p.reject.Store(true)
	s.OnData(req(2, "a"))
	fs = down.waitFrames(t, 2)
	if fs[1].Meta.Value("error") != "overloaded" {
		t.Fatalf("rejected after pause: %v", fs[1].Meta.All())
	}
	p.reject.Store(false)
	s.OnData(req(3, "a", "x-panic=1"))
	fs = down.waitFrames(t, 3)
	if fs[2].Meta.Value("error") != "internal" || e.srv.Stats().PanicsContained.Load() != 1 {
		t.Fatalf("panicking filter: %v", fs[2].Meta.All())
	}
	if got := responses.Load(); got != 3 {
		t.Errorf("response filter saw %d responses, want 3", got)
	}
}

type respCounter struct{ n *atomic.Int32 }

func (respCounter) OnRequest(*filter.Exchange) filter.Status { return filter.Continue }
func (r respCounter) OnResponse(*filter.Exchange)            { r.n.Add(1) }

func TestExclusiveReusesConnections(t *testing.T) {
	e := newTestEnv(t, false)
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	for i := range 10 {
		s.OnData(req(uint64(i), "a"))
		down.waitFrames(t, i+1)
	}
	if n := len(e.a.conns); n != 1 {
		t.Errorf("sequential requests used %d connections, want 1", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newTestEnv(t, true)
	e.srv.cfg.IdleTimeout = 20 * time.Millisecond
	down := newMemConn()
	e.srv.NewSession(down, "c")
	eventually(t, "idle connection closed", down.isClosed)
	if e.srv.Stats().IdleTimeout.Load() != 1 {
		t.Fatal("idle_timeout not counted")
	}
}

func TestBufferLimit(t *testing.T) {
	e := newTestEnv(t, true)
	e.srv.maxBuf = 64
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	big := req(1, "a", "x="+strings.Repeat("y", 200))
	s.OnData(big[:100])
	if !down.isClosed() {
		t.Fatal("partial frame over the limit did not close the connection")
	}
}

// eventually waits up to 5 s for cond; it fails the test with what otherwise.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBatching: the frames of one read leave in one write upstream, and the
// answers to them in as few writes to the client as the upstream allowed.
func TestBatching(t *testing.T) {
	e := newTestEnv(t, true)
	e.srv.cfg.UpstreamConnsPerHost = 1
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	s.OnData(req(1, "a")) // connect first
	down.waitFrames(t, 1)
	var burst []byte
	for i := range 10 {
		burst = append(burst, req(uint64(100+i), "a")...)
	}
	s.OnData(burst)
	down.waitFrames(t, 11)
	e.a.mu.Lock()
	up := e.a.conns[0].down
	e.a.mu.Unlock()
	up.mu.Lock()
	writes := up.writes
	up.mu.Unlock()
	if writes != 2 {
		t.Errorf("11 requests in 2 reads took %d upstream writes, want 2", writes)
	}
}

// TestBatchSharesOneConnection: with several multiplexed connections per
// host, the requests of one client read go on one of them in one write, and
// the next read's requests on the next one.
func TestBatchSharesOneConnection(t *testing.T) {
	e := newTestEnv(t, true)
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	s.OnData(req(1, "a")) // connect both slots
	s.OnData(req(2, "a"))
	down.waitFrames(t, 2)
	writes := func() []int {
		e.a.mu.Lock()
		defer e.a.mu.Unlock()
		var n []int
		for _, u := range e.a.conns {
			u.down.mu.Lock()
			n = append(n, u.down.writes)
			u.down.mu.Unlock()
		}
		return n
	}
	if w := writes(); len(w) != 2 || w[0] != 1 || w[1] != 1 {
		t.Fatalf("two reads of one request: upstream writes %v, want [1 1]", w)
	}
	burst := func(from int) []byte {
		var b []byte
		for i := range 10 {
			b = append(b, req(uint64(from+i), "a")...)
		}
		return b
	}
	s.OnData(burst(100))
	down.waitFrames(t, 12)
	if w := writes(); w[0]+w[1] != 3 {
		t.Fatalf("a read of 10 requests: upstream writes %v, want one more write in all", w)
	}
	s.OnData(burst(200))
	down.waitFrames(t, 22)
	if w := writes(); w[0] != 2 || w[1] != 2 {
		t.Errorf("two reads of 10 requests: upstream writes %v, want one on each connection ([2 2])", w)
	}
}

// TestRequestsStayOnTheClientsWorker: a multiplexed pool sends a client's
// requests on an upstream connection of the client's own worker when one is
// open (transport.Placed), so the host need not hand them to another thread;
// round robin per batch would alternate between the two connections.
func TestRequestsStayOnTheClientsWorker(t *testing.T) {
	e := newTestEnv(t, true)
	e.dialer.workerOf = func(n int) int32 { return int32(1 + (n+1)%2) } // 1st dial on worker 1, 2nd on 2
	warm := e.srv.NewSession(newMemConn(), "warm")
	warm.OnData(req(1, "a")) // connect both slots
	warm.OnData(req(2, "a"))
	waitFor(t, func() bool {
		e.a.mu.Lock()
		defer e.a.mu.Unlock()
		return len(e.a.conns) == 2 && len(e.a.seen) == 2
	})
	for _, worker := range []int32{2, 1} {
		down := newMemConn()
		down.worker = worker
		s := e.srv.NewSession(down, fmt.Sprint("on-", worker))
		for i := range 6 {
			s.OnData(req(uint64(100+i), "a"))
			down.waitFrames(t, i+1)
		}
		e.a.mu.Lock()
		on := e.a.seenOn[len(e.a.seenOn)-6:]
		for i, u := range on {
			if u.down.worker != worker {
				t.Errorf("request %d of a client on worker %d went on a connection of worker %d", i, worker, u.down.worker)
			}
		}
		e.a.mu.Unlock()
	}
}

func TestRequestTimeout(t *testing.T) {
	for _, mux := range []bool{true, false} {
		t.Run(fmt.Sprintf("mux=%v", mux), func(t *testing.T) {
			e := &testEnv{a: &memServer{}} // never answers
			e.dialer = &memDialer{servers: map[string]*memServer{"10.0.0.1:1": e.a}}
			srv, err := New(Config{
				StatPrefix: "t", Protocol: "kv", Codec: codec.FactoryFunc(func() codec.Codec { return kvCodec{} }),
				Multiplexing: mux, RequestTimeout: 30 * time.Millisecond,
				Routes: &router.Table{Routes: []*router.Route{{Name: "all", Cluster: "ca"}}},
				Clusters: []cluster.Config{{Name: "ca", Type: cluster.Static, ConnectTimeout: time.Second,
					Endpoints: []cluster.Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}}}},
			}, Options{Dialer: e.dialer})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			down := newMemConn()
			s := srv.NewSession(down, "c")
			s.OnData(append(req(1, "a"), req(2, "a")...))
			fs := down.waitFrames(t, 2)
			for _, f := range fs {
				if f.Meta.Value("error") != "timeout" {
					t.Errorf("id %d: %v, want a timeout error", f.ID, f.Meta.All())
				}
			}
			if srv.InFlight() != 0 || srv.Stats().RequestTimeout.Load() != 2 || down.isClosed() {
				t.Errorf("in flight %d, timeouts %d, closed %v", srv.InFlight(), srv.Stats().RequestTimeout.Load(), down.isClosed())
			}
		})
	}
}

// TestResponseSplitAcrossReads: a response that arrives a byte at a time,
// then two responses in one read, reach their clients intact.
func TestResponseSplitAcrossReads(t *testing.T) {
	e := newTestEnv(t, true)
	e.srv.cfg.UpstreamConnsPerHost = 1
	e.a.handler = nil // the test answers by hand
	down := newMemConn()
	s := e.srv.NewSession(down, "c")
	s.OnData(append(append(req(1, "a"), req(2, "a")...), req(3, "a")...))
	eventually(t, "requests reach the server", func() bool {
		e.a.mu.Lock()
		defer e.a.mu.Unlock()
		return len(e.a.seen) == 3
	})
	e.a.mu.Lock()
	h, seen := e.a.conns[0].h, append([]codec.Message(nil), e.a.seen...)
	e.a.mu.Unlock()
	for _, b := range kvFrame(1, seen[0].ID, "from=slow") {
		h.OnData([]byte{b})
	}
	h.OnData(append(kvFrame(1, seen[1].ID, "from=x"), kvFrame(1, seen[2].ID, "from=y")...))
	fs := down.waitFrames(t, 3)
	got := map[uint64]string{}
	for _, f := range fs {
		got[f.ID] = f.Meta.Value("from")
	}
	if got[1] != "slow" || got[2] != "x" || got[3] != "y" {
		t.Fatalf("responses by client id: %v", got)
	}
}
