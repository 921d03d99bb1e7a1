package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// Fault tests: upstreams that die or reset connections while clients keep
// calling through the proxy. A failing call must come back as a native Dubbo
// error reply (never a hang, never a closed client connection) and service
// must resume once a healthy upstream is reachable again.

// recoverTimeout bounds how long the proxy may take to serve every client
// again once its provider is back (connect back-off included).
const recoverTimeout = 15 * time.Second

// TestDubboProviderKilledUnderLoad kills the only provider, three times,
// while 16 clients call through the proxy, and brings it back on the same
// port each time: while it is down every call gets an error reply, and once
// it is back every client connection is served again.
func TestDubboProviderKilledUnderLoad(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					testKilledUnderLoad(t, px, mux)
				})
			}
		})
	}
}

func testKilledUnderLoad(t *testing.T, px harness.Proxy, mux bool) {
	const callers, cycles = 16, 3
	p := harness.StartDubboProvider(t, "killed")
	addr, pid := harness.StartProxy(t, px, dubboBootstrap(harness.FreePort(t), mux,
		[]harness.Route{{Name: "all", Cluster: "c"}}, map[string][]string{"c": {p.Addr()}}))

	// The provider comes back with the same tag and port, so its answers
	// do not change across restarts.
	first := p
	ld := startLoad(t, addr, callers, func(req rawdubbo.Call) string { return first.HelloFrom(req.Args[0].(string)) },
		func(i, seq int) rawdubbo.Call { return sayHello(fmt.Sprintf("c%d-%d", i, seq)) })
	ld.waitAll(t, "every caller answered before the first kill", recoverTimeout,
		func(s callerStats) bool { return s.ok > 0 })
	rssBefore := rssOf(t, pid)

	for cycle := 1; cycle <= cycles; cycle++ {
		time.Sleep(300 * time.Millisecond) // load on a healthy provider
		p.Kill()
		killed := time.Now()
		time.Sleep(500 * time.Millisecond) // load on a dead provider
		// Nothing listens on the port: every caller's next call must fail,
		// with an error reply; a caller that sees none is stuck.
		ld.waitAll(t, fmt.Sprintf("cycle %d: every caller got an error reply after the kill", cycle), callTimeout+5*time.Second,
			func(s callerStats) bool { return s.lastFail.After(killed) })

		p = harness.StartDubboProviderOn(t, "killed", p.Port)
		back := time.Now()
		ld.waitAll(t, fmt.Sprintf("cycle %d: every caller answered again after the restart", cycle), recoverTimeout,
			func(s callerStats) bool { return s.lastOK.After(back) })
		t.Logf("cycle %d: provider down %v, every caller served %v after it was back",
			cycle, back.Sub(killed).Round(time.Millisecond), time.Since(back).Round(time.Millisecond))
	}

	tot := ld.stop(t)
	t.Logf("%d callers, %d kill/restart cycles: %d calls ok, %d failed with an error reply; max latency to an error %v",
		callers, cycles, tot.ok, tot.failed, tot.maxFailLatency.Round(time.Millisecond))
	if pid != 0 {
		t.Logf("proxy (pid %d) RSS: %s before the first kill, %s after the last cycle",
			pid, mib(rssBefore), mib(rssOf(t, pid)))
	}
}

// TestDubboUpstreamResetMidRequest sends calls to an upstream that resets
// every connection after the first bytes of a request: each call must get
// an error reply, the client connections must stay open and the listener
// must keep serving routes to a healthy provider.
func TestDubboUpstreamResetMidRequest(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p1 := harness.StartDubboProvider(t, "p1")
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					testUpstreamReset(t, px, p1, mux)
				})
			}
		})
	}
}

func testUpstreamReset(t *testing.T, px harness.Proxy, p1 *harness.DubboProvider, mux bool) {
	const callers, calls = 8, 20
	var resets atomic.Int64
	rst := startResetter(t, &resets)
	// dubboRoutes: sayHello to c1 (the provider), sleep to c2 (the resetter).
	addr := px.Start(t, dubboBootstrap(harness.FreePort(t), mux, dubboRoutes(),
		map[string][]string{"c1": {p1.Addr()}, "c2": {rst}}))

	conns := make([]*rawdubbo.Conn, callers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		maxLat   time.Duration
		problems []string
	)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
		wg.Add(1)
		go func(c *rawdubbo.Conn) {
			defer wg.Done()
			for j := range calls {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				r, err := c.Call(ctx, sleepCall(1))
				cancel()
				lat := time.Since(start)
				mu.Lock()
				switch {
				case errors.Is(err, context.DeadlineExceeded):
					problems = append(problems, fmt.Sprintf("caller %d call %d: no reply after %v", i, j, lat.Round(time.Millisecond)))
				case err != nil:
					problems = append(problems, fmt.Sprintf("caller %d call %d: the client connection was lost: %v", i, j, err))
					mu.Unlock()
					return
				case r.Status == 20:
					problems = append(problems, fmt.Sprintf("caller %d call %d: status 20 (%q) through an upstream that resets", i, j, r.String()))
				default:
					failed++
					maxLat = max(maxLat, lat)
				}
				mu.Unlock()
			}
		}(conns[i])
	}
	wg.Wait()
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d callers x %d calls to the resetting upstream: %d error replies, max latency %v; the upstream reset %d connections",
		callers, calls, failed, maxLat.Round(time.Millisecond), resets.Load())
	if resets.Load() == 0 {
		t.Error("no connection reached the resetting upstream")
	}

	for i, c := range conns {
		select {
		case <-c.Done():
			t.Errorf("caller %d: the proxy closed the client connection: %v", i, c.Err())
			continue
		default:
		}
		name := fmt.Sprintf("after-%d", i)
		if r := call(t, c, sayHello(name)); r.String() != p1.HelloFrom(name) {
			t.Errorf("caller %d: sayHello to the healthy provider after the resets: %q", i, r.String())
		}
		if s := c.Stray(); len(s) > 0 {
			t.Errorf("caller %d: responses for ids nobody waited for: %v", i, s)
		}
	}
	if r := call(t, dialRaw(t, addr), sayHello("fresh")); r.String() != p1.HelloFrom("fresh") {
		t.Errorf("new connection after the resets: %q", r.String())
	}
}

// load runs callers, each on its own client connection, that make one call
// after another until stopped.
type load struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	conns []*rawdubbo.Conn

	mu       sync.Mutex
	stats    []callerStats
	problems []string // hangs, lost connections, wrong answers
}

// callerStats are one caller's figures.
type callerStats struct {
	ok, failed     int
	maxFailLatency time.Duration // the slowest error reply
	lastOK         time.Time     // when the latest successful call ended
	lastFail       time.Time     // when the latest error reply arrived
	inFlight       time.Time     // when the pending call started; zero: none
	lost           bool          // the client connection ended
}

// maxProblems bounds the problems a load records.
const maxProblems = 50

// startLoad dials n connections to addr and starts one caller on each. A
// caller's seq-th call is req(i, seq); a successful reply must be want(the
// call). The load stops when the test ends if stop was not called.
func startLoad(t *testing.T, addr string, n int, want func(rawdubbo.Call) string, req func(i, seq int) rawdubbo.Call) *load {
	t.Helper()
	ld := &load{stopc: make(chan struct{}), stats: make([]callerStats, n)}
	for i := range n {
		c := dialRaw(t, addr)
		ld.conns = append(ld.conns, c)
		ld.wg.Add(1)
		go ld.run(i, c, want, req)
	}
	t.Cleanup(func() { ld.stop(t) })
	return ld
}

func (ld *load) run(i int, c *rawdubbo.Conn, want func(rawdubbo.Call) string, req func(i, seq int) rawdubbo.Call) {
	defer ld.wg.Done()
	for seq := 0; ; seq++ {
		select {
		case <-ld.stopc:
			return
		default:
		}
		rq := req(i, seq)
		start := time.Now()
		ld.mu.Lock()
		ld.stats[i].inFlight = start
		ld.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		r, err := c.Call(ctx, rq)
		cancel()
		end := time.Now()

		ld.mu.Lock()
		s := &ld.stats[i]
		s.inFlight = time.Time{}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			ld.problem("caller %d: %s(%v) got no reply in %v", i, rq.Method, rq.Args, callTimeout)
		case err != nil:
			ld.problem("caller %d: %s(%v): the client connection was lost: %v", i, rq.Method, rq.Args, err)
			s.lost = true
			ld.mu.Unlock()
			return
		case r.Status != 20:
			s.failed++
			s.lastFail = end
			s.maxFailLatency = max(s.maxFailLatency, end.Sub(start))
		case r.String() != want(rq):
			ld.problem("caller %d: %s(%v) = %q (status %d), want %q", i, rq.Method, rq.Args, r.String(), r.Status, want(rq))
		default:
			s.ok++
			s.lastOK = end
		}
		ld.mu.Unlock()
	}
}

// problem records a problem; ld.mu is held.
func (ld *load) problem(format string, args ...any) {
	if len(ld.problems) < maxProblems {
		ld.problems = append(ld.problems, fmt.Sprintf(format, args...))
	}
}

// waitAll waits until cond holds for every caller and fails t if it does not
// within timeout.
func (ld *load) waitAll(t *testing.T, what string, timeout time.Duration, cond func(callerStats) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ld.mu.Lock()
		var behind []int
		for i, s := range ld.stats {
			if !cond(s) {
				behind = append(behind, i)
			}
		}
		ld.mu.Unlock()
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v: callers %v lag behind\n%s", what, timeout, behind, ld.report())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// report describes every caller and the problems so far.
func (ld *load) report() string {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	var b strings.Builder
	now := time.Now()
	ago := func(at time.Time) string {
		if at.IsZero() {
			return "never"
		}
		return now.Sub(at).Round(time.Millisecond).String() + " ago"
	}
	for i, s := range ld.stats {
		fmt.Fprintf(&b, "  caller %2d: %d ok (last %s), %d failed (last %s)", i, s.ok, ago(s.lastOK), s.failed, ago(s.lastFail))
		if !s.inFlight.IsZero() {
			fmt.Fprintf(&b, ", a call in flight for %v", now.Sub(s.inFlight).Round(time.Millisecond))
		}
		if s.lost {
			b.WriteString(", connection lost")
		}
		b.WriteByte('\n')
	}
	for _, p := range ld.problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	return b.String()
}

// stop stops the callers (a pending call ends within callTimeout), fails t
// for the problems they met and returns their summed figures. It is
// idempotent; later calls report nothing.
func (ld *load) stop(t *testing.T) callerStats {
	t.Helper()
	select {
	case <-ld.stopc:
		return callerStats{}
	default:
	}
	close(ld.stopc)
	ld.wg.Wait()
	ld.mu.Lock()
	defer ld.mu.Unlock()
	var tot callerStats
	for i, s := range ld.stats {
		tot.ok += s.ok
		tot.failed += s.failed
		tot.maxFailLatency = max(tot.maxFailLatency, s.maxFailLatency)
		if st := ld.conns[i].Stray(); len(st) > 0 {
			ld.problem("caller %d: responses for ids nobody waited for (late or duplicated replies): %v", i, st)
		}
		if !s.lost {
			select {
			case <-ld.conns[i].Done():
				ld.problem("caller %d: the proxy closed the client connection: %v", i, ld.conns[i].Err())
			default:
			}
		}
	}
	for _, p := range ld.problems {
		t.Error(p)
	}
	return tot
}

// rssOf returns the RSS of process pid, 0 for pid 0.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	if pid == 0 {
		return 0
	}
	rss, err := harness.ProcessRSS(pid)
	if err != nil {
		t.Errorf("RSS of the proxy: %v", err)
	}
	return rss
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TestDubboConnectFailureRetried: a cluster with a host that refuses
// connections and a live provider; a request whose connect fails was never
// sent and is retried on the other host, so no caller sees an error.
func TestDubboConnectFailureRetried(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p := harness.StartDubboProvider(t, "p1")
			dead := harness.Addr(harness.FreePort(t))
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					addr := px.Start(t, dubboBootstrap(harness.FreePort(t), mux,
						[]harness.Route{{Name: "all", Cluster: "c"}}, map[string][]string{"c": {dead, p.Addr()}}))
					for i := range 10 {
						name := fmt.Sprintf("retry-%d", i)
						if r := call(t, dialRaw(t, addr), sayHello(name)); r.String() != p.HelloFrom(name) {
							t.Fatalf("call %d with one host refusing: %q", i, r.String())
						}
					}
				})
			}
		})
	}
}

// TestDubboUpstreamGarbage: an upstream answering with garbage fails only
// the calls routed to it, each with a native error, fast; the clients'
// connections stay open and serve calls to a healthy provider; nothing
// stays in flight and (standalone) goroutines come back to their level.
func TestDubboUpstreamGarbage(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p := harness.StartDubboProvider(t, "p1")
			b, admin := blackholeBootstrap(t, px, p.Addr(), startGarbageUpstream(t), nil)
			addr := px.Start(t, b.MustRender())
			g0 := int64(-1)
			if admin != 0 {
				g0 = adminStat(harness.Addr(admin), "goroutines")
			}
			var wg sync.WaitGroup
			var failed, wrong atomic.Int64
			for i := range 8 {
				c := dialRaw(t, addr)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range 20 {
						ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
						r, err := c.Call(ctx, sleepCall(1))
						cancel()
						if err != nil || r.OK() {
							wrong.Add(1)
							continue
						}
						failed.Add(1)
						name := fmt.Sprintf("g%d-%d", i, j)
						ctx, cancel = context.WithTimeout(context.Background(), callTimeout)
						r, err = c.Call(ctx, sayHello(name))
						cancel()
						if err != nil || r.String() != p.HelloFrom(name) {
							wrong.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if wrong.Load() != 0 || failed.Load() != 160 {
				t.Errorf("%d calls to the garbage upstream failed natively (want 160); %d calls went wrong", failed.Load(), wrong.Load())
			}
			if admin != 0 {
				adminAddr := harness.Addr(admin)
				if !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(adminAddr, "request_active") == 0 }) {
					t.Errorf("request_active = %d after every call returned", adminStat(adminAddr, "request_active"))
				}
				var g int64
				harness.WaitFor(t, 10*time.Second, func() bool { g = adminStat(adminAddr, "goroutines"); return g <= g0+10 })
				if g > g0+10 {
					t.Errorf("goroutines: %d before, %d after", g0, g)
				}
				t.Logf("response_decoding_error = %d; goroutines %d before, %d after",
					adminStat(adminAddr, "response_decoding_error"), g0, g)
			}
		})
	}
}
