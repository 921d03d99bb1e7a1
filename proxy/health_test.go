package proxy

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// Upstream health in the engine: circuit breakers (max_requests,
// max_connections with requests waiting under max_pending_requests) and
// outlier ejection fed by answers, against in-memory upstreams.

// gate holds a memServer's answers until opened.
type gate struct {
	mu   sync.Mutex
	open bool
	held []func()
}

// handler answers as echoHandler(tag), once the gate is open.
func (g *gate) handler(s *memServer, tag string) func(codec.Message) []byte {
	echo := echoHandler(tag)
	return func(m codec.Message) []byte {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.open {
			return echo(m)
		}
		return nil
	}
}

func errorOf(m codec.Message) string { return m.Meta.Value("error") }

func oneHost(t *testing.T, mux bool, edit func(*cluster.Config)) *testEnv {
	t.Helper()
	return newTestEnvWith(t, mux, func(c *Config) {
		cl := cluster.Config{Name: "one", Type: cluster.Static, ConnectTimeout: time.Second,
			Endpoints: []cluster.Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}}}
		edit(&cl)
		c.Clusters = append(c.Clusters, cl)
		c.Routes = &router.Table{Name: "t", Routes: []*router.Route{{Name: "all", Cluster: "one"}}}
	})
}

func clusterOf(e *testEnv, name string) *cluster.Cluster {
	for _, c := range e.srv.Clusters() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

func TestMaxRequestsOverflowsAtOnce(t *testing.T) {
	e := oneHost(t, true, func(c *cluster.Config) { c.MaxRequests = 2 })
	e.a.handler = func(codec.Message) []byte { return nil } // never answers
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	for i := range 5 {
		ss.OnData(req(uint64(i+1), "m"))
	}
	for _, m := range down.waitFrames(t, 3) {
		if errorOf(m) != "overloaded" || m.ID < 3 {
			t.Fatalf("answer %d: error %q (%v), want overloaded for calls 3-5", m.ID, errorOf(m), m.Meta.All())
		}
	}
	st := clusterOf(e, "one").Stats()
	if st.UpstreamRqPendingOverflow.Load() != 3 || st.UpstreamRqActive.Load() != 2 || st.RqOpen.Load() != 1 {
		t.Fatalf("overflow %d, active %d, rq_open %d; want 3, 2, 1", st.UpstreamRqPendingOverflow.Load(), st.UpstreamRqActive.Load(), st.RqOpen.Load())
	}
	waitFor(t, func() bool { return e.a.seenN() == 2 })
	ss.OnClose() // cancels the two in flight: their places are given back
	waitFor(t, func() bool { return st.UpstreamRqActive.Load() == 0 && st.RqOpen.Load() == 0 })
}

// With one connection allowed, an exclusive pool's second request waits
// for it (max_pending_requests 1) and the third overflows; the answer to
// the first frees the connection for the second.
func TestMaxConnectionsQueuesRequestsAsPending(t *testing.T) {
	e := oneHost(t, false, func(c *cluster.Config) { c.MaxConnections, c.MaxPendingRequests = 1, 1 })
	g := &gate{}
	e.a.handler = g.handler(e.a, "a")
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	ss.OnData(req(1, "m"))
	waitFor(t, func() bool { return e.a.seenN() == 1 }) // connected: no longer pending
	ss.OnData(req(2, "m"))
	ss.OnData(req(3, "m"))
	if m := down.waitFrames(t, 1)[0]; m.ID != 3 || errorOf(m) != "overloaded" {
		t.Fatalf("first answer: call %d error %q, want call 3 overloaded", m.ID, errorOf(m))
	}
	cl := clusterOf(e, "one")
	st := cl.Stats()
	waitFor(t, func() bool { return e.a.seenN() == 1 })
	if st.UpstreamRqPendingActive.Load() != 1 || st.UpstreamCxActive.Load() != 1 || st.UpstreamRqPendingOverflow.Load() != 1 {
		t.Fatalf("pending %d, connections %d, overflow %d; want 1, 1, 1", st.UpstreamRqPendingActive.Load(), st.UpstreamCxActive.Load(), st.UpstreamRqPendingOverflow.Load())
	}
	g.mu.Lock()
	g.open = true
	g.mu.Unlock()
	// The held first request is answered when the server sees the next
	// frame; kill its connection instead, and the waiting request gets a
	// new connection in its place.
	e.a.kill()
	frames := down.waitFrames(t, 3)
	if m := frames[2]; m.ID != 2 || from(m) != "a" {
		t.Fatalf("waiting call: %d from %q error %q, want call 2 answered by a", m.ID, from(m), errorOf(m))
	}
	if st.UpstreamRqPendingActive.Load() != 0 {
		t.Fatalf("pending %d after the wait", st.UpstreamRqPendingActive.Load())
	}
}

// A connection given back after an answer goes to the waiting request,
// without a new dial.
func TestFreedConnectionGoesToTheWaitingRequest(t *testing.T) {
	e := oneHost(t, false, func(c *cluster.Config) { c.MaxConnections, c.MaxPendingRequests = 1, 4 })
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	for i := range 4 {
		ss.OnData(req(uint64(i+1), "m"))
	}
	for _, m := range down.waitFrames(t, 4) {
		if from(m) != "a" {
			t.Fatalf("call %d: from %q error %q", m.ID, from(m), errorOf(m))
		}
	}
	if d := e.dialer.dials; d != 1 {
		t.Fatalf("%d dials, want 1: the waiting requests reuse the one connection", d)
	}
}

func TestWaitingRequestTimesOutAndIsCancelled(t *testing.T) {
	e := oneHost(t, false, func(c *cluster.Config) { c.MaxConnections = 1 })
	e.srv.cfg.RequestTimeout = 200 * time.Millisecond
	e.a.handler = func(codec.Message) []byte { return nil }
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	ss.OnData(req(1, "m"))
	ss.OnData(req(2, "m"))
	for _, m := range down.waitFrames(t, 2) {
		if errorOf(m) != "timeout" {
			t.Fatalf("call %d: error %q, want timeout", m.ID, errorOf(m))
		}
	}
	st := clusterOf(e, "one").Stats()
	waitFor(t, func() bool { return st.UpstreamRqPendingActive.Load() == 0 })

	ss.OnData(req(3, "m"))
	ss.OnData(req(4, "m"))
	waitFor(t, func() bool { return st.UpstreamRqPendingActive.Load() == 1 })
	ss.OnClose()
	waitFor(t, func() bool { return st.UpstreamRqPendingActive.Load() == 0 && st.UpstreamRqActive.Load() == 0 })
}

// A host that answers every call with a server failure is ejected after
// consecutive_5xx of them; calls go to the other host until its ejection
// time passes.
func TestOutlierDetectionEjectsAndReturns(t *testing.T) {
	e := trafficEnv(t, func(_ *router.Route, c *Config) {
		c.Clusters[len(c.Clusters)-1].OutlierDetection = &cluster.OutlierDetection{
			Consecutive5xx: 3, EnforcingConsecutive5xx: 100, Interval: 20 * time.Millisecond,
			BaseEjectionTime: 300 * time.Millisecond, MaxEjectionTime: time.Second, MaxEjectionPercent: 50}
	})
	e.a.handler = failingHandler
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	failures := 0
	for i := 0; failures < 3; i++ {
		if i > 10 {
			t.Fatalf("only %d server failures in %d calls", failures, i)
		}
		ss.OnData(req(uint64(i+1), "m"))
		if m := down.waitFrames(t, i+1)[i]; m.Status == codec.StatusServerFailure {
			failures++
		}
	}
	cl := clusterOf(e, "ab")
	st := cl.Stats()
	ejectedAt := time.Now()
	if st.EjectionsEnforcedConsecutive5xx.Load() != 1 || st.EjectionsActive.Load() != 1 {
		t.Fatalf("enforced %d, active %d", st.EjectionsEnforcedConsecutive5xx.Load(), st.EjectionsActive.Load())
	}
	seen := e.a.seenN()
	n := len(down.frames(t))
	for i := range 6 {
		ss.OnData(req(uint64(100+i), "m"))
		if m := down.waitFrames(t, n+i+1)[n+i]; m.Status != codec.StatusOK || from(m) != "b" {
			if time.Since(ejectedAt) < 300*time.Millisecond {
				t.Fatalf("call during the ejection: %v from %q", m.Status, from(m))
			}
		}
	}
	if e.a.seenN() != seen && time.Since(ejectedAt) < 300*time.Millisecond {
		t.Fatalf("the ejected host got calls")
	}
	waitFor(t, func() bool { return st.EjectionsActive.Load() == 0 })
	if d := time.Since(ejectedAt); d < 300*time.Millisecond {
		t.Fatalf("returned after %v, before its 300ms ejection", d)
	}
	if _, healthy := cl.Membership(); healthy != 2 {
		t.Fatalf("%d healthy hosts after the return", healthy)
	}
}

// The codec probe needs a codec that can build one; kvCodec cannot.
func TestCodecProbeNeedsAProber(t *testing.T) {
	_, err := New(Config{StatPrefix: "p", Protocol: "kv", Codec: codec.FactoryFunc(func() codec.Codec { return kvCodec{} }),
		Clusters: []cluster.Config{{Name: "c", Type: cluster.Static, Endpoints: []cluster.Endpoint{{Host: "10.0.0.1", Port: 1}},
			HealthCheck: &cluster.HealthCheck{Codec: true, Timeout: time.Second, Interval: time.Second, UnhealthyThreshold: 1, HealthyThreshold: 1}}}},
		Options{Dialer: &memDialer{}})
	if err == nil || !strings.Contains(err.Error(), "no protocol probe") || !strings.Contains(err.Error(), "tcp_health_check") {
		t.Fatalf("err = %v, want a refusal naming the missing probe and the TCP check", err)
	}
}

// A request waiting for a connection to a host that an endpoint update
// removes picks a host again, though the cluster now has only one: it was
// never sent. The new host's pool has no connection, so it dials one over
// max_connections (the removed host's busy connection still holds the
// cluster's one), as Envoy's pools do.
func TestWaitingRequestForARemovedHostPicksAgain(t *testing.T) {
	e := oneHost(t, false, func(c *cluster.Config) { c.MaxConnections, c.MaxPendingRequests = 1, 1 })
	e.a.handler = func(codec.Message) []byte { return nil } // never answers
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	ss.OnData(req(1, "m"))
	waitFor(t, func() bool { return e.a.seenN() == 1 })
	ss.OnData(req(2, "m"))
	st := clusterOf(e, "one").Stats()
	waitFor(t, func() bool { return st.UpstreamRqPendingActive.Load() == 1 })
	if err := clusterOf(e, "one").Update([]cluster.Endpoint{{Host: "10.0.0.2", Port: 1, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if m := down.waitFrames(t, 1)[0]; m.ID != 2 || from(m) != "b" {
		t.Fatalf("waiting call: %d from %q error %q (%v), want call 2 answered by b", m.ID, from(m), errorOf(m), m.Meta.All())
	}
	if r := e.srv.Stats().UpstreamRqRetry.Load(); r != 0 {
		t.Fatalf("upstream_rq_retry = %d: picking again is not a retry", r)
	}
	if st.UpstreamCxOverflow.Load() == 0 {
		t.Fatal("the connection over max_connections was not counted as upstream_cx_overflow")
	}
}

// At max_connections, a pool with no connection at all dials one: a
// request picked to a host the cluster's connections do not reach is
// served, not left waiting for a connection of that host to free up.
func TestPoolWithNoConnectionDialsAtMaxConnections(t *testing.T) {
	e := trafficEnv(t, func(_ *router.Route, c *Config) {
		c.Multiplexing = false
		for i := range c.Clusters {
			c.Clusters[i].MaxConnections = 1
		}
	})
	e.a.handler = func(codec.Message) []byte { return nil } // never answers
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	ss.OnData(req(1, "m"))
	ss.OnData(req(2, "m")) // round robin: the other host
	m := down.waitFrames(t, 1)[0]
	if from(m) != "b" {
		t.Fatalf("call %d: from %q error %q, want an answer from b", m.ID, from(m), errorOf(m))
	}
	waitFor(t, func() bool { return e.a.seenN() == 1 })
}

// A host picked before an update removed it gets no new pool, and its
// drained pool takes no request: both say errHostGone, which makes the
// request pick again.
func TestNoPoolForAHostThatLeft(t *testing.T) {
	e := trafficEnv(t, nil)
	ref := e.srv.refs["ab"]
	var a, b *cluster.Host
	for _, h := range ref.cl.Hosts() {
		if h.Addr == "10.0.0.1:1" {
			a = h
		} else {
			b = h
		}
	}
	pb, err := e.srv.pool(b, 0, ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.cl.Update([]cluster.Endpoint{{Host: "10.0.0.3", Port: 1, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if !a.Left() || !b.Left() {
		t.Fatal("the removed hosts are not marked as left")
	}
	if _, err := e.srv.pool(a, 0, ref); err != errHostGone {
		t.Fatalf("pool for a host that left: err %v, want errHostGone", err)
	}
	if _, err := pb.pick(0); err != errHostGone {
		t.Fatalf("pick on the drained pool: err %v, want errHostGone", err)
	}
	e.srv.poolMu.RLock()
	defer e.srv.poolMu.RUnlock()
	for k := range e.srv.pools {
		if k.host == a || k.host == b {
			t.Fatalf("a pool of %s is still held", k.host.Addr)
		}
	}
}
