package proxy

import (
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

// The router stage's traffic management: retries, timeouts, mirroring, and
// the completion hook, against in-memory upstreams.

// trafficEnv has one cluster "ab" of hosts a (10.0.0.1) and b (10.0.0.2),
// round robin, and one route "all" to it that edit may change.
func trafficEnv(t *testing.T, edit func(*router.Route, *Config), filters ...filter.Named) *testEnv {
	t.Helper()
	return newTestEnvWith(t, true, func(c *Config) {
		c.Clusters = append(c.Clusters, cluster.Config{Name: "ab", Type: cluster.Static, ConnectTimeout: time.Second, MaxRetries: 3,
			Endpoints: []cluster.Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}, {Host: "10.0.0.2", Port: 1, Weight: 1}}})
		r := &router.Route{Name: "all", Cluster: "ab"}
		if edit != nil {
			edit(r, c)
		}
		c.Routes = &router.Table{Name: "t", Routes: []*router.Route{r}}
	}, filters...)
}

func failingHandler(m codec.Message) []byte { return kvFrame(6, m.ID, "from=a") }

func from(m codec.Message) string { return m.Meta.Value("from") }

func TestRetryOnServerFailureGoesToTheOtherHost(t *testing.T) {
	e := trafficEnv(t, func(r *router.Route, _ *Config) {
		r.Retry = router.RetryPolicy{NumRetries: 1, On: router.RetryServerFailure}
	})
	e.a.handler = failingHandler
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	for i := range 10 { // one at a time: concurrent retries are bounded
		ss.OnData(req(uint64(i+1), "m"))
		down.waitFrames(t, i+1)
	}
	for _, m := range down.frames(t) {
		if m.Kind != codec.KindResponse || m.Status != codec.StatusOK || from(m) != "b" {
			t.Fatalf("answer %d: status %v from %q", m.ID, m.Status, from(m))
		}
	}
	// Each try advances the round robin: after the first request every
	// request's first try lands on a, and is retried on b.
	st := e.srv.Stats()
	atA := uint64(e.a.seenN())
	if r := st.UpstreamRqRetry.Load(); r < 9 || r != atA || st.UpstreamRqRetrySuccess.Load() != r {
		t.Fatalf("retries %d, retry successes %d, tries at a %d", r, st.UpstreamRqRetrySuccess.Load(), atA)
	}
}

func TestServerFailureWithoutPolicyReachesTheClient(t *testing.T) {
	e := trafficEnv(t, nil)
	e.a.handler, e.b.handler = failingHandler, failingHandler
	down := newMemConn()
	e.srv.NewSession(down, "c").OnData(req(1, "m"))
	if m := down.waitFrames(t, 1)[0]; m.Status != codec.StatusServerFailure {
		t.Fatalf("status %v", m.Status)
	}
}

func TestRetryBudgetBoundsConcurrentRetries(t *testing.T) {
	e := trafficEnv(t, func(r *router.Route, c *Config) {
		r.Retry = router.RetryPolicy{NumRetries: 1, On: router.RetryServerFailure}
		c.Clusters[len(c.Clusters)-1].MaxRetries = 0
	})
	e.a.handler, e.b.handler = failingHandler, failingHandler
	down := newMemConn()
	e.srv.NewSession(down, "c").OnData(req(1, "m"))
	down.waitFrames(t, 1)
	if n := e.srv.Stats().UpstreamRqRetryOverflow.Load(); n != 1 {
		t.Fatalf("retry overflow %d, want 1", n)
	}
}

func TestPerTryTimeoutRetriesElsewhere(t *testing.T) {
	e := trafficEnv(t, func(r *router.Route, _ *Config) {
		r.Retry = router.RetryPolicy{NumRetries: 2, PerTryTimeout: 300 * time.Millisecond, On: router.RetryPerTryTimeout}
	})
	e.a.handler = func(codec.Message) []byte { return nil } // a never answers
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	for i := range 4 {
		ss.OnData(req(uint64(i+1), "m"))
	}
	for _, m := range down.waitFrames(t, 4) {
		if m.Status != codec.StatusOK || from(m) != "b" {
			t.Fatalf("answer %d: %v from %q", m.ID, m.Status, from(m))
		}
	}
	if n := e.srv.Stats().UpstreamRqPerTryTimeout.Load(); n != 2 {
		t.Fatalf("per-try timeouts %d, want 2", n)
	}
}

func TestRouteTimeoutOverridesTheListenerTimeout(t *testing.T) {
	e := trafficEnv(t, func(r *router.Route, c *Config) {
		r.Timeout = 50 * time.Millisecond
		c.RequestTimeout = time.Hour
	})
	e.a.handler = func(codec.Message) []byte { return nil }
	e.b.handler = e.a.handler
	down := newMemConn()
	start := time.Now()
	e.srv.NewSession(down, "c").OnData(req(1, "m"))
	m := down.waitFrames(t, 1)[0]
	if m.Kind != codec.KindResponse || m.Meta.Value("error") != "timeout" {
		t.Fatalf("got %v %v", m.Kind, m.Meta.All())
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("timed out after %v, before the route's 50ms", d)
	}
}

func TestMirrorGetsACopyAndNeverTheClient(t *testing.T) {
	e := trafficEnv(t, func(r *router.Route, _ *Config) {
		r.Cluster = "ca"
		r.Mirrors = []router.Mirror{{Cluster: "cb", Millionths: 1e6}, {Cluster: "cdead", Millionths: 1e6}}
	})
	var mirrored atomic.Int32
	e.b.handler = func(m codec.Message) []byte { mirrored.Add(1); return kvFrame(1, m.ID, "from=b") }
	done := &completions{}
	e.srv.snap.Load().chain = filter.NewChain([]filter.Named{{Name: "done", Filter: done}}, nil)
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	for i := range 20 {
		ss.OnData(req(uint64(i+1), "m"))
	}
	for _, m := range down.waitFrames(t, 20) {
		if from(m) != "a" || m.Status != codec.StatusOK {
			t.Fatalf("answer %d from %q: %v", m.ID, from(m), m.Meta.All())
		}
	}
	st := e.srv.Stats()
	waitFor(t, func() bool {
		return mirrored.Load() == 20 && st.RequestMirrorFailed.Load() == 20 && st.RequestMirrorActive.Load() == 0
	})
	if n := st.RequestMirror.Load(); n != 40 {
		t.Fatalf("request_mirror %d, want 40", n)
	}
	if len(down.frames(t)) != 20 {
		t.Fatal("the client got a mirror's answer")
	}
	waitFor(t, func() bool { return done.n() == 20 })
	done.mu.Lock()
	defer done.mu.Unlock()
	for _, o := range done.got {
		if o.Mirrored != 2 {
			t.Fatalf("outcome of a call sent to two mirrors: Mirrored = %d", o.Mirrored)
		}
	}
}

// A filter's second Resume of an exchange still in flight is ignored and
// counted.
func TestStrayResumeIsCounted(t *testing.T) {
	e := trafficEnv(t, nil, filter.Named{Name: "twice", Filter: filter.Func(func(x *filter.Exchange) filter.Status {
		go func() { x.Resume(); x.Resume() }()
		return filter.Pause
	})})
	e.a.handler, e.b.handler = nil, nil // the request stays in flight
	e.srv.NewSession(newMemConn(), "c").OnData(req(1, "m"))
	st := e.srv.Stats()
	waitFor(t, func() bool { return st.FilterResumeStray.Load() == 1 })
	waitFor(t, func() bool { return e.a.seenN()+e.b.seenN() == 1 })
}

// completions counts OnComplete calls by how the exchange ended.
type completions struct {
	mu  sync.Mutex
	got []filter.Outcome
}

func (c *completions) OnRequest(*filter.Exchange) filter.Status { return filter.Continue }
func (c *completions) OnComplete(x *filter.Exchange) {
	c.mu.Lock()
	c.got = append(c.got, x.Outcome)
	c.mu.Unlock()
}

func (c *completions) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func TestCompletionRunsOnceOnEveryPath(t *testing.T) {
	c := &completions{}
	e := newTestEnv(t, true, filter.Named{Name: "c", Filter: c})
	e.a.handler = func(m codec.Message) []byte {
		if m.Meta.Value("method") == "a-silent" {
			return nil
		}
		return kvFrame(1, m.ID, "from=a")
	}
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	ss.OnData(req(1, "a"))               // answered
	ss.OnData(req(2, "nowhere"))         // no route: local reply
	ss.OnData(kvFrame(3, 3, "method=a")) // oneway
	down.waitFrames(t, 2)
	waitFor(t, func() bool { return c.n() == 3 })
	ss.OnData(req(4, "a-silent")) // the client goes before the answer
	waitFor(t, func() bool { return e.srv.InFlight() == 1 && e.a.seenN() >= 3 })
	ss.OnClose()
	waitFor(t, func() bool { return c.n() == 4 })
	c.mu.Lock()
	defer c.mu.Unlock()
	// The first three end in any order; one of each kind.
	var local, oneway, answered int
	for _, o := range c.got[:3] {
		switch {
		case o.Local:
			local++
			if o.ErrorType != codec.ErrRouteNotFound || o.Tries != 0 {
				t.Errorf("local reply: %+v", o)
			}
		case o.Oneway:
			oneway++
			if o.Tries != 1 {
				t.Errorf("oneway: %+v", o)
			}
		default:
			answered++
			if o.Tries != 1 || o.Status != codec.StatusOK || o.BytesIn == 0 || o.BytesOut == 0 || o.End.IsZero() {
				t.Errorf("answered: %+v", o)
			}
		}
	}
	if local != 1 || oneway != 1 || answered != 1 {
		t.Errorf("outcomes %+v", c.got[:3])
	}
	o := c.got
	if !o[3].ClientGone || o[3].Local {
		t.Errorf("client gone: %+v", o[3])
	}
}

// TestPausedExchangeTimesOut: a filter that holds a request past the
// request timeout does not hold its client: the client gets the timeout,
// and the exchange ends when the filter lets go.
func TestPausedExchangeTimesOut(t *testing.T) {
	c := &completions{}
	var held atomic.Pointer[filter.Exchange]
	hold := filter.Func(func(x *filter.Exchange) filter.Status { held.Store(x); return filter.Pause })
	e := newTestEnvWith(t, true, func(cfg *Config) { cfg.RequestTimeout = 40 * time.Millisecond },
		filter.Named{Name: "c", Filter: c}, filter.Named{Name: "hold", Filter: hold})
	down := newMemConn()
	e.srv.NewSession(down, "c").OnData(req(1, "a"))
	if m := down.waitFrames(t, 1)[0]; m.Meta.Value("error") != "timeout" {
		t.Fatalf("got %v", m.Meta.All())
	}
	if e.srv.InFlight() != 0 || c.n() != 0 {
		t.Fatalf("in flight %d, completions %d after the timeout", e.srv.InFlight(), c.n())
	}
	held.Load().Resume()
	waitFor(t, func() bool { return c.n() == 1 })
	if o := c.got[0]; !o.Local || o.ErrorType != codec.ErrTimeout {
		t.Fatalf("outcome %+v", o)
	}
	if e.a.seenN() != 0 || len(down.frames(t)) != 1 {
		t.Fatal("the timed-out request went on after Resume")
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (s *memServer) seenN() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// TestRemovedHostsPoolDrains: a host that leaves its cluster gets no new
// request and its idle connection is closed; the cluster's other hosts
// keep theirs.
func TestRemovedHostsPoolDrains(t *testing.T) {
	e := trafficEnv(t, nil)
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	for i := range 4 {
		ss.OnData(req(uint64(i+1), "m"))
	}
	down.waitFrames(t, 4)
	ab := e.srv.refs["ab"].cl
	if err := ab.Update([]cluster.Endpoint{{Host: "10.0.0.2", Port: 1, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		e.a.mu.Lock()
		defer e.a.mu.Unlock()
		for _, u := range e.a.conns {
			if !u.down.isClosed() {
				return false
			}
		}
		return true
	})
	before := e.a.seenN()
	for i := range 4 {
		ss.OnData(req(uint64(i+5), "m"))
	}
	for _, m := range down.waitFrames(t, 8)[4:] {
		if from(m) != "b" {
			t.Fatalf("answer %d from %q after a was removed", m.ID, from(m))
		}
	}
	if e.a.seenN() != before {
		t.Fatal("the removed host got requests")
	}
}

// TestNotSentRetryNeedsAnotherHost: a request whose only host refused the
// connection is not "retried" at that same host, which now backs off.
func TestNotSentRetryNeedsAnotherHost(t *testing.T) {
	e := newTestEnv(t, true)
	down := newMemConn()
	e.srv.NewSession(down, "c").OnData(req(1, "dead"))
	if m := down.waitFrames(t, 1)[0]; m.Meta.Value("error") != "unavailable" {
		t.Fatalf("got %v", m.Meta.All())
	}
	if n := e.srv.Stats().UpstreamRqRetry.Load(); n != 0 {
		t.Fatalf("upstream_rq_retry = %d for a cluster of one host", n)
	}
}

type oneSidedFactory struct{ codec.Factory }

func (oneSidedFactory) Capabilities() codec.Capabilities {
	return codec.Capabilities{Side: codec.SideDownstream}
}

// TestCodecModesNotRunAreRefused: a codec that declares a mode the engine
// does not run is refused at configuration time, not proxied wrongly.
func TestCodecModesNotRunAreRefused(t *testing.T) {
	_, err := New(Config{Codec: oneSidedFactory{codec.FactoryFunc(func() codec.Codec { return kvCodec{} })}}, Options{Dialer: &memDialer{}})
	if err == nil || !strings.Contains(err.Error(), "one side") {
		t.Fatalf("err = %v, want a refusal naming the one side it parses", err)
	}
}
