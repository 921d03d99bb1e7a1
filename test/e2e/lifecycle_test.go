package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// TestStandaloneSIGTERMDrains checks the standalone proxy's lifecycle: it
// warns about configured features it does not run, and on SIGTERM it stops
// accepting, lets in-flight calls finish and exits 0 as soon as the last is
// answered (reliability defect 7: it waited out its whole drain timeout),
// with an idle client connected too. Both I/O models.
func TestStandaloneSIGTERMDrains(t *testing.T) {
	for _, reactor := range []string{"1", "0"} {
		t.Run("METAPROXY_REACTOR="+reactor, func(t *testing.T) { testSIGTERMDrains(t, reactor) })
	}
}

func testSIGTERMDrains(t *testing.T, reactor string) {
	p := harness.StartDubboProvider(t, "p1")
	port, admin := harness.FreePort(t), harness.FreePort(t)
	// Aeraki configs often carry tracing without a provider (Envoy's
	// bootstrap tracer would apply): accepted, with a warning.
	y := harness.Bootstrap{AdminPort: admin, Listeners: []harness.Listener{{Port: port, Proxy: harness.MetaProtocolProxy{
		StatPrefix: "dubbo_e2e", Protocol: "dubbo", Multiplexing: true, Routes: dubboRoutes(),
		Extra: map[string]any{"tracing": map[string]any{}},
	}}}, Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{p.Addr()}}, {Name: "c2", Endpoints: []string{p.Addr()}}}}.MustRender()
	const drainTimeout = 60 * time.Second
	addr, mp := startStandaloneSh(t, y, "METAPROXY_REACTOR="+reactor, "-drain-timeout", drainTimeout.String())
	warned := func() bool { return strings.Contains(mp.Output(), "tracing has no provider") }
	if !harness.WaitFor(t, 10*time.Second, warned) {
		t.Errorf("no warning about tracing in:\n%s", mp.Output())
	}

	c, err := rawdubbo.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	idle := dialRaw(t, addr)
	call(t, idle, sayHello("idle"))
	var inflight []<-chan error
	for range 3 {
		inflight = append(inflight, goCall(c, sleepCall(700)))
	}
	if !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(harness.Addr(admin), "request_active") == 3 }) {
		t.Fatalf("the 3 calls are not in flight: request_active = %d", adminStat(harness.Addr(admin), "request_active"))
	}
	start := time.Now()
	if err := syscall.Kill(mp.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitPortClosed(addr, 2*time.Second); err != nil {
		t.Errorf("listener still open after SIGTERM: %v", err)
	}
	for _, done := range inflight {
		if err := <-done; err != nil {
			t.Errorf("in-flight call during drain: %v", err)
		}
	}
	select {
	case <-mp.Exited():
	case <-time.After(drainTimeout / 2):
		t.Fatalf("metaproxy still runs %v after its in-flight calls were answered (drain timeout %v)", drainTimeout/2, drainTimeout)
	}
	if err := mp.Wait(); err != nil {
		t.Errorf("metaproxy exit: %v, want status 0", err)
	}
	t.Logf("drained and exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}

// TestStandaloneHalfClose pins reliability defect 8's half-close: a client
// that sends requests and then half-closes (FIN) got none of its 20
// answers. The standalone proxy keeps the connection open for writing until
// every request in flight is answered, then closes it. (In Envoy the
// golang network filter cannot enable downstream half-close: Envoy closes
// the connection on FIN.)
func TestStandaloneHalfClose(t *testing.T) {
	for _, reactor := range []string{"1", "0"} {
		t.Run("METAPROXY_REACTOR="+reactor, func(t *testing.T) {
			p := harness.StartDubboProvider(t, "p1")
			y := dubboBootstrap(harness.FreePort(t), true, dubboRoutes(), map[string][]string{"c1": {p.Addr()}, "c2": {p.Addr()}})
			addr, _ := startStandaloneSh(t, y, "METAPROXY_REACTOR="+reactor)
			c := dialRaw(t, addr)
			const n = 20
			waits := pipeline(t, c, n, sleepCall(200))
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got := 0
			for _, w := range waits {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				r, err := w(ctx)
				cancel()
				if err == nil && r.OK() {
					got++
				}
			}
			if got != n {
				t.Errorf("%d of %d answers after the half-close", got, n)
			}
			select {
			case <-c.Done():
			case <-time.After(10 * time.Second):
				t.Error("the connection stays open after its last answer")
			}
		})
	}
}

// TestStandaloneSIGTERMUnderLoad: SIGTERM while 16 clients call without
// pause. Each connection is closed once it has no call in flight, so the
// drain ends at once instead of waiting out its timeout (new calls kept
// arriving on open connections), every call read by the proxy is answered
// (a call fails only because its connection closed first), and the
// process exits 0.
func TestStandaloneSIGTERMUnderLoad(t *testing.T) {
	p := harness.StartDubboProvider(t, "p1")
	y := dubboBootstrap(harness.FreePort(t), true, dubboRoutes(), map[string][]string{"c1": {p.Addr()}, "c2": {p.Addr()}})
	const drainTimeout = 60 * time.Second
	addr, mp := startStandaloneSh(t, y, "", "-drain-timeout", drainTimeout.String())

	type result struct{ ok, closed, wrong int }
	results := make(chan result, 16)
	for i := range 16 {
		c := dialRaw(t, addr)
		go func() {
			var r result
			for seq := 0; ; seq++ {
				name := fmt.Sprintf("c%d-%d", i, seq)
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				rep, err := c.Call(ctx, sayHello(name))
				cancel()
				switch {
				case err != nil && !errors.Is(err, context.DeadlineExceeded):
					// ErrClosed, or the write of a call that met the
					// closed connection (EPIPE, reset): never read by
					// the proxy.
					r.closed++
					results <- r
					return
				case err != nil || rep.String() != p.HelloFrom(name):
					r.wrong++
					results <- r
					return
				}
				r.ok++
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // load
	start := time.Now()
	if err := syscall.Kill(mp.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var total result
	for range 16 {
		r := <-results
		total.ok += r.ok
		total.closed += r.closed
		total.wrong += r.wrong
	}
	if total.wrong > 0 {
		t.Errorf("%d calls timed out or got a wrong answer", total.wrong)
	}
	select {
	case <-mp.Exited():
	case <-time.After(drainTimeout / 2):
		t.Fatalf("metaproxy still runs %v after SIGTERM under load (drain timeout %v)", drainTimeout/2, drainTimeout)
	}
	if err := mp.Wait(); err != nil {
		t.Errorf("metaproxy exit: %v, want status 0", err)
	}
	t.Logf("%d calls answered; all 16 connections closed by the drain; exited %v after SIGTERM",
		total.ok, time.Since(start).Round(time.Millisecond))
}
