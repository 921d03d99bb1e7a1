package e2e

// Upstream health with dubbo-go peers, through every proxy host: circuit
// breakers (max_requests; max_connections with max_pending_requests on an
// exclusive listener), outlier detection (consecutive_5xx ejection, its
// return, max_ejection_percent) and active health checks (TCP: a closed
// port; the codec probe: a frozen provider whose port still accepts).
//
// Counters come from the standalone proxy's admin listener; the ABI host
// has none, so there the tests assert what the clients and providers see.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// statusOverloaded is Dubbo's SERVER_THREADPOOL_EXHAUSTED_ERROR, the
// status of the proxy's overloaded error.
const statusOverloaded = 100

// breakers is a cluster's circuit_breakers with one DEFAULT threshold.
func breakers(limits map[string]any) map[string]any {
	return map[string]any{"circuit_breakers": map[string]any{"thresholds": []any{limits}}}
}

// sleepPeak returns the most sleep calls p ran at once since the last
// sleepPeak, asked of p directly.
func sleepPeak(t *testing.T, p *harness.DubboProvider) int {
	t.Helper()
	r := call(t, dialRaw(t, p.Addr()), rawdubbo.Call{Interface: harness.DubboInterface, Method: "sleepPeak"})
	n, err := strconv.Atoi(r.String())
	if err != nil {
		t.Fatalf("sleepPeak: %q", r.String())
	}
	return n
}

// outcome is one call's reply and how long it took.
type outcome struct {
	r rawdubbo.Reply
	d time.Duration
}

// concurrentSleeps makes n sleep(ms) calls at once, each on its own
// connection to addr, all sent before the first can be answered.
func concurrentSleeps(t *testing.T, addr string, n int, ms int64) []outcome {
	t.Helper()
	conns := make([]*rawdubbo.Conn, n)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r, err := c.Call(t.Context(), sleepCall(ms))
			if err != nil {
				r.Exception = "call failed: " + err.Error()
			}
			out[i] = outcome{r, time.Since(start)}
		}()
	}
	wg.Wait()
	return out
}

// TestHealthDubboCircuitBreakers: over a provider whose calls take 2 s,
// max_requests 4 lets 4 calls reach it and answers the others at once
// with the overloaded status; on an exclusive listener, max_connections 2
// with max_pending_requests 2 lets 2 in, 2 wait for a connection and the
// rest are refused at once.
func TestHealthDubboCircuitBreakers(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "slow")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			// Not parallel: the provider's peak counts one proxy's calls.
			t.Run("max_requests", func(t *testing.T) {
				addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
					harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}, Extra: breakers(map[string]any{"max_requests": 4})}))
				sleepPeak(t, p)
				checkBreaker(t, concurrentSleeps(t, addr, 12, 2000), 4, 4, "max_requests")
				if peak := sleepPeak(t, p); peak > 4 {
					t.Errorf("the provider ran %d calls at once, over max_requests 4", peak)
				}
				if admin != "" {
					if o := adminStat(admin, "upstream_rq_pending_overflow"); o < 1 {
						t.Errorf("cluster upstream_rq_pending_overflow = %d, want > 0", o)
					}
				}
			})
			t.Run("max_connections+max_pending_requests", func(t *testing.T) {
				b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
					harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}, Extra: breakers(map[string]any{"max_connections": 2, "max_pending_requests": 2})})
				b.Listeners[0].Proxy.Multiplexing = false
				addr, admin := trafficStart(t, px, b)
				sleepPeak(t, p)
				// 2 run, up to 2 wait (and then run 2 s more), the others are
				// refused. A refusal names whichever limit stopped it: a
				// request that meets a connection still connecting (the
				// machine is slow) waits as a pending request, so it is
				// refused for max_pending_requests alone.
				checkBreaker(t, concurrentSleeps(t, addr, 8, 1500), 2, 4, "max_connections", "max_pending_requests")
				if peak := sleepPeak(t, p); peak > 2 {
					t.Errorf("the provider ran %d calls at once, over max_connections 2", peak)
				}
				if admin != "" {
					if o := adminStat(admin, "upstream_rq_pending_overflow"); o < 1 {
						t.Errorf("cluster upstream_rq_pending_overflow = %d, want > 0", o)
					}
				}
			})
		})
	}
}

// checkBreaker checks the outcomes of concurrent sleep calls over a
// breaker: at least minOK and at most maxOK answered, every other one the
// overloaded status naming one of the limits, and refused well before a
// sleep could have ended.
func checkBreaker(t *testing.T, outs []outcome, minOK, maxOK int, limits ...string) {
	t.Helper()
	ok, refused := 0, 0
	for i, o := range outs {
		switch {
		case strings.HasPrefix(o.r.String(), "slept "):
			ok++
		case o.r.Status == statusOverloaded && slices.ContainsFunc(limits, func(l string) bool { return strings.Contains(o.r.Exception, l) }):
			refused++
			if o.d > time.Second {
				t.Errorf("call %d refused after %v: not at once", i, o.d.Round(time.Millisecond))
			}
		default:
			t.Errorf("call %d: status %d %q, want an answer or the overloaded status naming %s", i, o.r.Status, o.r.String(), strings.Join(limits, " or "))
		}
	}
	t.Logf("%d answered, %d refused", ok, refused)
	if ok < minOK || ok > maxOK || refused == 0 {
		t.Errorf("%d calls answered and %d refused, want %d-%d answered and the rest refused", ok, refused, minOK, maxOK)
	}
}

// outlierDetection is a cluster's outlier_detection ejecting after n
// consecutive server failures for base (back-off aside), checked every
// 100 ms, at most pct % of the hosts.
func outlierDetection(n int, base string, pct int) map[string]any {
	return map[string]any{"outlier_detection": map[string]any{"consecutive_5xx": n, "interval": "0.1s",
		"base_ejection_time": base, "max_ejection_percent": pct}}
}

// TestHealthDubboOutlierDetection: a host that answers every call with a
// server failure (status 80) is ejected after consecutive_5xx 3 of them:
// every call goes to the good provider until its 1 s ejection ends, then
// it gets calls again. With two failing hosts of three and
// max_ejection_percent 34, one only is ejected at a time.
func TestHealthDubboOutlierDetection(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "good")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("eject and return", func(t *testing.T) {
				var failed atomic.Int64
				failer := startDubboFailer(t, &failed)
				addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
					harness.Cluster{Name: "c", Endpoints: []string{failer, p.Addr()}, Extra: outlierDetection(3, "1s", 50)}))
				c := dialRaw(t, addr)
				// Round robin over the two: the failer's third failure ejects it.
				for i := 0; failed.Load() < 3; i++ {
					if i > 20 {
						t.Fatalf("the failing host got %d calls of %d", failed.Load(), i)
					}
					call(t, c, sayHello(fmt.Sprintf("o-%d", i)))
				}
				ejected := time.Now()
				good := 0
				for i := 0; time.Since(ejected) < 700*time.Millisecond; i++ {
					name := fmt.Sprintf("e-%d", i)
					if r := call(t, c, sayHello(name)); r.String() == p.HelloFrom(name) {
						good++
					} else if time.Since(ejected) < 700*time.Millisecond {
						t.Fatalf("call %v after the ejection: status %d %q, want the good provider's answer", time.Since(ejected).Round(time.Millisecond), r.Status, r.String())
					}
				}
				if failed.Load() != 3 {
					t.Errorf("the ejected host got %d calls, want 3 (none while ejected)", failed.Load())
				}
				if admin != "" {
					if n := adminStat(admin, "outlier_detection.ejections_active"); n != 1 {
						t.Errorf("ejections_active = %d during the ejection, want 1", n)
					}
				}
				// It returns after its time (1 s, checked every 0.1 s).
				for i := 0; failed.Load() == 3; i++ {
					if time.Since(ejected) > 10*time.Second {
						t.Fatalf("the ejected host got no call %v after its 1 s ejection", time.Since(ejected))
					}
					call(t, c, sayHello(fmt.Sprintf("r-%d", i)))
				}
				back := time.Since(ejected)
				t.Logf("ejected after 3 server failures; %d good calls during the ejection; back after %v", good, back.Round(time.Millisecond))
				if back < time.Second {
					t.Errorf("the ejected host was back after %v, before its 1 s ejection", back)
				}
				if admin != "" {
					if n := adminStat(admin, "outlier_detection.ejections_enforced_consecutive_5xx"); n < 1 {
						t.Errorf("ejections_enforced_consecutive_5xx = %d", n)
					}
				}
			})
			t.Run("max_ejection_percent", func(t *testing.T) {
				var f1, f2 atomic.Int64
				a, b := startDubboFailer(t, &f1), startDubboFailer(t, &f2)
				addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
					harness.Cluster{Name: "c", Endpoints: []string{a, b, p.Addr()}, Extra: outlierDetection(2, "30s", 34)}))
				c := dialRaw(t, addr)
				for i := range 30 {
					call(t, c, sayHello(fmt.Sprintf("m-%d", i)))
				}
				// One failer is ejected for 30 s; the other, over the cap, keeps its calls.
				n1, n2 := f1.Load(), f2.Load()
				for i := range 30 {
					call(t, c, sayHello(fmt.Sprintf("n-%d", i)))
				}
				d1, d2 := f1.Load()-n1, f2.Load()-n2
				t.Logf("calls at the failing hosts over the last 30: %d and %d", d1, d2)
				if (d1 == 0) == (d2 == 0) {
					t.Errorf("the failing hosts got %d and %d of the last 30 calls: want exactly one ejected (max_ejection_percent 34 of 3 hosts)", d1, d2)
				}
				if admin != "" {
					if n := adminStat(admin, "outlier_detection.ejections_active"); n != 1 {
						t.Errorf("ejections_active = %d, want 1", n)
					}
					if n := adminStat(admin, "outlier_detection.ejections_overflow"); n < 1 {
						t.Errorf("ejections_overflow = %d, want > 0", n)
					}
				}
			})
		})
	}
}

// healthCheck is a cluster's health_checks entry with checker, checking
// every interval, unhealthy after 2 failures, healthy after 1 success.
func healthCheck(interval string, checker map[string]any) map[string]any {
	hc := map[string]any{"timeout": "0.2s", "interval": interval, "unhealthy_threshold": 2, "healthy_threshold": 1,
		"no_traffic_interval": interval}
	for k, v := range checker {
		hc[k] = v
	}
	return map[string]any{"health_checks": []any{hc}}
}

var (
	tcpCheck   = map[string]any{"tcp_health_check": map[string]any{}}
	codecProbe = map[string]any{"custom_health_check": map[string]any{"name": "metaproxy.health_checkers.codec"}}
)

// TestHealthDubboActiveHealthCheck: a TCP health check takes a closed port
// out of the cluster and puts it back once a provider listens there; the
// codec probe (a Dubbo heartbeat) takes out a provider frozen with SIGSTOP,
// whose port still accepts, and puts it back once thawed.
func TestHealthDubboActiveHealthCheck(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("tcp closed port", func(t *testing.T) { testDubboClosedPort(t, px) })
			t.Run("codec probe frozen provider", func(t *testing.T) { testDubboFrozenProbe(t, px) })
		})
	}
}

func testDubboClosedPort(t *testing.T, px harness.Proxy) {
	p := harness.StartDubboProvider(t, "up")
	port := harness.FreePort(t)
	addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{harness.Addr(port), p.Addr()}, Extra: healthCheck("0.2s", tcpCheck)}))
	c := dialRaw(t, addr)
	if admin != "" && !harness.WaitFor(t, 10*time.Second, func() bool {
		return adminStat(admin, "membership_healthy") == 1 && adminStat(admin, "health_check.failure") >= 2
	}) {
		t.Fatalf("membership_healthy = %d, health_check.failure = %d: the closed port is not marked unhealthy",
			adminStat(admin, "membership_healthy"), adminStat(admin, "health_check.failure"))
	}
	// (In the ABI host, which has no stats, a pick of the closed port would
	// be retried at once at the other host: the calls below succeed either
	// way, and the standalone proxy's counters show the port is not picked.)
	var connectFails int64
	if admin != "" {
		connectFails = adminStat(admin, "upstream_cx_connect_fail")
	}
	for i := range 10 {
		name := fmt.Sprintf("cp-%d", i)
		if r := call(t, c, sayHello(name)); r.String() != p.HelloFrom(name) {
			t.Errorf("call %d: %q, want the listening provider's answer", i, r.String())
		}
	}
	if admin != "" {
		if n := adminStat(admin, "upstream_cx_connect_fail"); n != connectFails {
			t.Errorf("upstream_cx_connect_fail grew from %d to %d: the unhealthy host was picked", connectFails, n)
		}
	}
	// A provider on the port: it passes its next check and gets calls.
	late := harness.StartDubboProviderOn(t, "late", port)
	t.Logf("the port's provider got calls %v after it listened", untilServedBy(t, c, late, "lp").Round(time.Millisecond))
}

func testDubboFrozenProbe(t *testing.T, px harness.Proxy) {
	pa, pb := harness.StartDubboProvider(t, "probe-a"), harness.StartDubboProvider(t, "probe-b")
	addr, admin := trafficStart(t, px, dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c",
		Extra: map[string]any{"timeout": "5s"}}}, nil,
		harness.Cluster{Name: "c", Endpoints: []string{pa.Addr(), pb.Addr()}, Extra: healthCheck("0.2s", codecProbe)}))
	c := dialRaw(t, addr)
	seen := map[string]bool{}
	for i := 0; len(seen) < 2; i++ {
		if i > 50 {
			t.Fatalf("calls reached only %v", seen)
		}
		name := fmt.Sprintf("w-%d", i)
		r := call(t, c, sayHello(name))
		seen[servedBy(r.String())] = true
	}
	if err := pb.Freeze(); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	thawed := false
	defer func() {
		if !thawed {
			pb.Thaw()
		}
	}()
	// Two failed probes (0.2 s timeout, every 0.2 s) mark it unhealthy.
	if admin != "" {
		if !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(admin, "membership_healthy") == 1 }) {
			t.Fatalf("membership_healthy = %d: the frozen provider is not marked unhealthy", adminStat(admin, "membership_healthy"))
		}
		t.Logf("the frozen provider was marked unhealthy %v after SIGSTOP", time.Since(frozen).Round(time.Millisecond))
	}
	// Every call is answered by probe-a at once: 10 in a row. (Before the
	// probes mark probe-b, which the ABI host cannot tell, a call to it
	// waits for the route's 5 s timeout.)
	for run, i := 0, 0; run < 10; i++ {
		if time.Since(frozen) > 30*time.Second {
			t.Fatalf("calls still reach the frozen provider %v after SIGSTOP", time.Since(frozen).Round(time.Millisecond))
		}
		name := fmt.Sprintf("f-%d", i)
		start := time.Now()
		r := call(t, c, sayHello(name))
		fast := r.String() == pa.HelloFrom(name) && time.Since(start) < time.Second
		switch {
		case fast:
			run++
		case admin != "": // marked unhealthy, as the stats showed
			t.Errorf("call %d with probe-b marked unhealthy: %q after %v, want probe-a's answer at once", i, r.String(), time.Since(start).Round(time.Millisecond))
		default:
			run = 0
		}
	}
	if err := pb.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawed = true
	t.Logf("the thawed provider got calls again %v after SIGCONT", untilServedBy(t, c, pb, "t").Round(time.Millisecond))
}

// untilServedBy calls sayHello on c until p answers, for at most 10 s, and
// returns how long that took.
func untilServedBy(t *testing.T, c *rawdubbo.Conn, p *harness.DubboProvider, prefix string) time.Duration {
	t.Helper()
	start := time.Now()
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if r := call(t, c, sayHello(name)); r.String() == p.HelloFrom(name) {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s got no call in 10 s", p.Tag)
		}
	}
}

// TestHealthDubboMaxConnectionsAcrossHosts: on an exclusive listener with
// max_connections 1 over two providers, a call round robin sends to the
// host with no connection still gets one (as Envoy's pools open one for a
// host that has none, counted as upstream_cx_overflow), instead of waiting
// for a connection of that host that can never free up until its timeout.
func TestHealthDubboMaxConnectionsAcrossHosts(t *testing.T) {
	t.Parallel()
	a, b := harness.StartDubboProvider(t, "A"), harness.StartDubboProvider(t, "B")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			bs := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c", Extra: map[string]any{"timeout": "10s"}}}, nil,
				harness.Cluster{Name: "c", Endpoints: []string{a.Addr(), b.Addr()}, Extra: breakers(map[string]any{"max_connections": 1})})
			bs.Listeners[0].Proxy.Multiplexing = false
			addr, admin := trafficStart(t, px, bs)
			sleepPeak(t, a)
			sleepPeak(t, b)
			for i, o := range concurrentSleeps(t, addr, 2, 1000) {
				if !strings.HasPrefix(o.r.String(), "slept ") {
					t.Errorf("call %d: status %d %q after %v, want an answer", i, o.r.Status, o.r.String(), o.d.Round(time.Millisecond))
				}
			}
			if pa, pb := sleepPeak(t, a), sleepPeak(t, b); pa != 1 || pb != 1 {
				t.Errorf("providers ran %d and %d calls, want one each (round robin)", pa, pb)
			}
			if admin != "" {
				if o := adminStat(admin, "upstream_cx_overflow"); o < 1 {
					t.Errorf("cluster upstream_cx_overflow = %d, want > 0", o)
				}
			}
		})
	}
}
