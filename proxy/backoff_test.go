package proxy

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
	"github.com/metaproxy/metaproxy/transport"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// refusingEnv is a listener whose only cluster has the given hosts, all
// refusing connections at first.
func refusingEnv(t *testing.T, mux bool, clock *fakeClock, hosts ...string) (*Server, *memDialer, []*memServer) {
	t.Helper()
	d := &memDialer{servers: map[string]*memServer{}}
	var eps []cluster.Endpoint
	var servers []*memServer
	for _, h := range hosts {
		s := &memServer{handler: echoHandler(h), refuse: true}
		d.servers[h+":1"] = s
		servers = append(servers, s)
		eps = append(eps, cluster.Endpoint{Host: h, Port: 1, Weight: 1})
	}
	srv, err := New(Config{
		StatPrefix: "t", Protocol: "kv", Codec: codec.FactoryFunc(func() codec.Codec { return kvCodec{} }), Multiplexing: mux,
		Routes:   &router.Table{Routes: []*router.Route{{Name: "all", Cluster: "c"}}},
		Clusters: []cluster.Config{{Name: "c", Type: cluster.Static, ConnectTimeout: time.Second, Endpoints: eps}},
	}, Options{Dialer: d, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, d, servers
}

func (d *memDialer) dialCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

// TestConnectBackoff pins reliability defect 2: with its hosts refusing,
// the proxy used to dial once per request (2,250 dials a second). Now a
// host that failed to connect is not dialled again until its back-off ends,
// also when the balancer must pick it (one host, or every host down: panic
// mode); callers get a native unavailable error at once; when the back-off
// ends one request probes the host, and once it is back calls succeed.
func TestConnectBackoff(t *testing.T) {
	for _, hosts := range [][]string{{"10.0.0.1"}, {"10.0.0.1", "10.0.0.2"}} {
		for _, mux := range []bool{true, false} {
			t.Run(fmt.Sprintf("hosts=%d/mux=%v", len(hosts), mux), func(t *testing.T) {
				clock := newFakeClock()
				srv, d, servers := refusingEnv(t, mux, clock, hosts...)
				down := newMemConn()
				s := srv.NewSession(down, "client")
				const calls = 200
				for i := range calls {
					s.OnData(req(uint64(i+1), "m"))
					f := down.waitFrames(t, i+1)[i]
					if f.Status != codec.StatusError || f.Meta.Value("error") != codec.ErrUnavailable.String() {
						t.Fatalf("call %d: %v, want unavailable", i, f.Meta.All())
					}
				}
				if n := d.dialCount(); n != len(hosts) {
					t.Fatalf("%d calls to refusing hosts made %d dials, want %d (one per host)", calls, n, len(hosts))
				}
				if n := srv.Stats().UpstreamCxConnectBackoff.Load(); n < calls-uint64(len(hosts)) {
					t.Errorf("upstream_cx_connect_backoff = %d, want ≥ %d", n, calls-len(hosts))
				}
				// The hosts are back; once the back-off ends a probe
				// connects and calls succeed.
				for _, m := range servers {
					m.mu.Lock()
					m.refuse = false
					m.mu.Unlock()
				}
				clock.advance(cluster.ConnectBackoffMax)
				for i := calls; ; i++ {
					s.OnData(req(uint64(i+1), "m"))
					if f := down.waitFrames(t, i+1)[i]; f.Status == codec.StatusOK {
						break
					}
					if i > calls+len(hosts) {
						t.Fatalf("no successful call after the back-off ended")
					}
				}
			})
		}
	}
}

// TestConnectBackoffProbeOnce: when a back-off ends, one request probes the
// host; the others meanwhile do not dial it.
func TestConnectBackoffProbeOnce(t *testing.T) {
	clock := newFakeClock()
	srv, d, _ := refusingEnv(t, false, clock, "10.0.0.1")
	h := srv.refs["c"].cl.Hosts()[0]
	h.ConnectFailed(clock.now())
	clock.advance(cluster.ConnectBackoffMax)
	if !h.TryConnect(clock.now(), time.Second) {
		t.Fatal("no probe allowed after the back-off")
	}
	for range 10 {
		if h.TryConnect(clock.now(), time.Second) {
			t.Fatal("a second dial allowed while the probe is in flight")
		}
	}
	if d.dialCount() != 0 {
		t.Fatal("unexpected dial")
	}
}

// TestSelfConnectCounted: a dial the host reports as connected to itself
// is a connect failure, counted as upstream_cx_self_connect.
func TestSelfConnectCounted(t *testing.T) {
	e := newTestEnv(t, true)
	e.dialer.mu.Lock()
	e.dialer.failWith = fmt.Errorf("dial tcp: %w", transport.ErrSelfConnect)
	e.dialer.mu.Unlock()
	down := newMemConn()
	s := e.srv.NewSession(down, "client")
	s.OnData(req(1, "a1"))
	if f := down.waitFrames(t, 1)[0]; f.Status != codec.StatusError {
		t.Fatalf("call over a self-connected dial: %v", f.Meta.All())
	}
	st := e.srv.Stats()
	if st.UpstreamCxSelfConnect.Load() != 1 || st.UpstreamCxConnectFail.Load() != 1 {
		t.Fatalf("self_connect %d connect_fail %d, want 1 and 1", st.UpstreamCxSelfConnect.Load(), st.UpstreamCxConnectFail.Load())
	}
}

// TestConnectFailureRetriedElsewhere pins reliability defect 8's retry: a
// request whose connection to one host of its cluster fails to connect was
// never sent, and goes to another host before its caller sees an error.
func TestConnectFailureRetriedElsewhere(t *testing.T) {
	for _, mux := range []bool{true, false} {
		for _, bad := range []int{0, 1} {
			t.Run(fmt.Sprintf("mux=%v/refusing=%d", mux, bad), func(t *testing.T) {
				srv, _, servers := refusingEnv(t, mux, newFakeClock(), "10.0.0.1", "10.0.0.2")
				good := servers[1-bad]
				good.mu.Lock()
				good.refuse = false
				good.mu.Unlock()
				down := newMemConn()
				s := srv.NewSession(down, "client")
				for i := range 10 {
					s.OnData(req(uint64(i+1), "m"))
					if f := down.waitFrames(t, i+1)[i]; f.Status != codec.StatusOK {
						t.Fatalf("call %d with one host refusing: %v", i, f.Meta.All())
					}
				}
				if n := srv.Stats().UpstreamRqRetry.Load(); n < 1 {
					t.Errorf("upstream_rq_retry = %d, want ≥ 1", n)
				}
			})
		}
	}
}

// TestLocalConnectFailureNotHeldAgainstHost: a connect that fails because
// this process is out of file descriptors is no sign of the host's health:
// the host is not backed off from, and the next call dials it again.
func TestLocalConnectFailureNotHeldAgainstHost(t *testing.T) {
	e := newTestEnv(t, false)
	e.dialer.mu.Lock()
	e.dialer.failWith = &os.SyscallError{Syscall: "socket", Err: syscall.EMFILE}
	e.dialer.mu.Unlock()
	down := newMemConn()
	s := e.srv.NewSession(down, "client")
	s.OnData(req(1, "a1"))
	if f := down.waitFrames(t, 1)[0]; f.Meta.Value("error") != codec.ErrUnavailable.String() {
		t.Fatalf("call while out of descriptors: %v", f.Meta.All())
	}
	h := e.srv.refs["ca"].cl.Hosts()[0]
	if h.ConnectFailures() != 0 || e.srv.Stats().UpstreamCxLocalFail.Load() != 1 {
		t.Fatalf("host failures %d, upstream_cx_local_fail %d; want 0 and 1", h.ConnectFailures(), e.srv.Stats().UpstreamCxLocalFail.Load())
	}
	e.dialer.mu.Lock()
	e.dialer.failWith = nil
	e.dialer.mu.Unlock()
	s.OnData(req(2, "a1"))
	if f := down.waitFrames(t, 2)[1]; f.Status != codec.StatusOK {
		t.Fatalf("call once descriptors are back: %v", f.Meta.All())
	}
}
