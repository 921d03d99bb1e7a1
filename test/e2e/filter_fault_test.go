package e2e

// The fault injection filter (metaproxy.filters.fault) through every host,
// with a dubbo-go provider and an Apache Thrift backend: a 500 ms delay on
// half of the calls delays about half of them and leaves the others'
// latency as it was; a delayed call holds no other call of its connection
// (Dubbo: concurrent calls on one connection) or of another connection
// (Thrift: Apache clients are serial, one call per connection at a time);
// an abort on one method answers it with the protocol's native error while
// another method passes. The standalone proxy's fault stats are checked
// through its admin listener (the ABI host has none).

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

const (
	faultType = "type.googleapis.com/metaproxy.filters.fault.v1.Fault"
	// faultDelay is the injected delay; a call that took less than
	// faultFast was not delayed (generous: a loaded 2-core machine).
	faultDelay = 500 * time.Millisecond
	faultFast  = 300 * time.Millisecond
	// faultDubboServerError is Dubbo's SERVER_ERROR, the status an
	// "unavailable" abort becomes (codecs/dubbo StatusFor).
	faultDubboServerError = 80
)

// faultFilters is a meta_protocol_filters list: the fault filter with cfg
// (the Fault's fields), then the router. It comes as a TypedStruct, as a
// control plane sends it, when typed is false.
func faultFilters(cfg map[string]any, typed bool) []harness.Filter {
	if typed {
		cfg["@type"] = faultType
	} else {
		cfg = map[string]any{"@type": "type.googleapis.com/udpa.type.v1.TypedStruct", "type_url": faultType, "value": cfg}
	}
	return []harness.Filter{{Name: "metaproxy.filters.fault", Config: cfg}, {Name: "aeraki.meta_protocol.filters.router"}}
}

func faultPercent(n int) map[string]any {
	return map[string]any{"numerator": n, "denominator": "HUNDRED"}
}

func faultMethod(m string) map[string]any {
	return map[string]any{"metadata": []any{map[string]any{"name": "method", "exact_match": m}}}
}

// faultDelayOn is a 500 ms delay on percent % of the calls of method.
func faultDelayOn(method string, percent int, d time.Duration) map[string]any {
	return map[string]any{"match": faultMethod(method), "delay": map[string]any{"fixed_delay": d.String(), "percentage": faultPercent(percent)}}
}

// faultAbortOn aborts every call of method with error "unavailable".
func faultAbortOn(method string) map[string]any {
	return map[string]any{"match": faultMethod(method), "abort": map[string]any{"error": "unavailable", "percentage": faultPercent(100)}}
}

// checkHalfDelayed checks the latencies of sequential calls under a 50 %
// delay: each is either delayed (at least faultDelay) or fast (under
// faultFast), and about half are delayed (8 to 32 of 40). It returns the
// delayed count.
func checkHalfDelayed(t *testing.T, took []time.Duration) int {
	t.Helper()
	slow := 0
	for i, d := range took {
		switch {
		case d >= faultDelay:
			slow++
		case d >= faultFast:
			t.Errorf("call %d took %v: neither delayed (≥ %v) nor as fast as an undelayed call (< %v)", i, d, faultDelay, faultFast)
		}
	}
	t.Logf("%d of %d calls delayed; latencies %v", slow, len(took), took)
	// 50 % of 40 calls: fewer than 8 or more than 32 delayed happens once
	// in about 24,000 runs of a fair coin (with 20 calls and 3-17, once in
	// about 2,500: seen in CI).
	if lo := len(took) / 5; slow < lo || slow > len(took)-lo {
		t.Errorf("%d of %d calls were delayed, want about half", slow, len(took))
	}
	return slow
}

// waitAdminStat waits (10 s at most) for the standalone proxy's stat name
// to reach want.
func waitAdminStat(t *testing.T, admin, name string, want int64) {
	t.Helper()
	if !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(admin, name) == want }) {
		t.Errorf("%s = %d, want %d", name, adminStat(admin, name), want)
	}
}

func TestFilterFaultDubbo(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "fault")
	start := func(t *testing.T, px harness.Proxy, cfg map[string]any, typed bool) (addr, admin string) {
		b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
			harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}})
		b.Listeners[0].Proxy.Filters = faultFilters(cfg, typed)
		return trafficStart(t, px, b)
	}
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("delay half", func(t *testing.T) {
				t.Parallel()
				addr, admin := start(t, px, faultDelayOn("sayHello", 50, faultDelay), true)
				c := dialRaw(t, addr)
				if r := call(t, c, sleepCall(0)); !r.OK() { // not matched: warms the upstream connection up
					t.Fatalf("sleep(0): %s", r.String())
				}
				var took []time.Duration
				for i := range 40 {
					name := fmt.Sprintf("d-%d", i)
					t0 := time.Now()
					r := call(t, c, sayHello(name))
					took = append(took, time.Since(t0))
					if r.String() != p.HelloFrom(name) {
						t.Errorf("call %d: %q, want %q", i, r.String(), p.HelloFrom(name))
					}
				}
				slow := checkHalfDelayed(t, took)
				if admin != "" {
					waitAdminStat(t, admin, "traffic.fault.delays_injected", int64(slow))
					waitAdminStat(t, admin, "traffic.fault.active_faults", 0)
					if n := adminStat(admin, "traffic.fault.aborts_injected"); n != 0 {
						t.Errorf("aborts_injected = %d, want 0", n)
					}
				}
			})
			t.Run("delay holds no other call", func(t *testing.T) {
				t.Parallel()
				const delay = 2 * time.Second
				addr, admin := start(t, px, faultDelayOn("sleep", 100, delay), false)
				c := dialRaw(t, addr)
				call(t, c, sayHello("warm"))
				t0 := time.Now()
				delayed := goCall(c, sleepCall(1))
				// The same connection goes on serving sayHello at full speed
				// while sleep waits out its delay.
				for i := range 10 {
					name := fmt.Sprintf("c-%d", i)
					t1 := time.Now()
					r := call(t, c, sayHello(name))
					if d := time.Since(t1); d >= faultFast || r.String() != p.HelloFrom(name) {
						t.Errorf("call %d beside a delayed one: %q after %v; want %q under %v", i, r.String(), d, p.HelloFrom(name), faultFast)
					}
				}
				select {
				case err := <-delayed:
					t.Errorf("the delayed call ended after %v (%v) while the others ran; want it held %v", time.Since(t0), err, delay)
				default:
				}
				concurrentHellos(t, c, 8, "conc", func(name string) []string { return []string{p.HelloFrom(name)} })
				if err := <-delayed; err != nil || time.Since(t0) < delay {
					t.Errorf("the delayed call: %v after %v; want success after %v", err, time.Since(t0), delay)
				}
				// A delayed call whose client leaves: the proxy resumes and ends
				// it when the delay is over, and keeps serving.
				gone, err := rawdubbo.Dial(addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if err := gone.Send(sleepCall(1)); err != nil {
					t.Fatal(err)
				}
				if admin != "" {
					waitAdminStat(t, admin, "traffic.fault.active_faults", 1)
				}
				gone.Close()
				if admin != "" {
					waitAdminStat(t, admin, "traffic.fault.active_faults", 0)
					waitAdminStat(t, admin, "traffic.fault.delays_injected", 2)
				}
				if r := call(t, dialRaw(t, addr), sayHello("after")); r.String() != p.HelloFrom("after") {
					t.Errorf("a call after a client left during its delay: %q", r.String())
				}
			})
			t.Run("abort one method", func(t *testing.T) {
				t.Parallel()
				addr, admin := start(t, px, faultAbortOn("sayHello"), true)
				c := dialRaw(t, addr)
				for i := range 5 {
					r := call(t, c, sayHello(fmt.Sprintf("a-%d", i)))
					if r.Status != faultDubboServerError || !strings.Contains(r.Exception, "fault injected") {
						t.Errorf("sayHello %d: %s; want status %d (SERVER_ERROR) with the injected fault", i, r.String(), faultDubboServerError)
					}
					if r := call(t, c, sleepCall(1)); !r.OK() {
						t.Errorf("sleep %d (not matched): %s, want it served", i, r.String())
					}
				}
				// The dubbo-go consumer raises the abort as an error.
				lines := consumerLines(t, addr, true, "-name", "go")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR ") || !strings.Contains(lines[0], "fault injected") {
					t.Errorf("dubbo-go consumer: %q, want an ERROR line with the injected fault", lines)
				}
				if admin != "" {
					waitAdminStat(t, admin, "traffic.fault.aborts_injected", 6)
					waitAdminStat(t, admin, "traffic.fault.active_faults", 0)
					if n := adminStat(admin, "traffic.fault.delays_injected"); n != 0 {
						t.Errorf("delays_injected = %d, want 0", n)
					}
				}
			})
		})
	}
}

func TestFilterFaultThrift(t *testing.T) {
	t.Parallel()
	b := startThriftBackend(t, "fault")
	start := func(t *testing.T, px harness.Proxy, cfg map[string]any, typed bool) (addr, admin string) {
		bs := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil, backendCluster("c", b))
		bs.Listeners[0].Proxy.Filters = faultFilters(cfg, typed)
		return trafficStart(t, px, bs)
	}
	ctx := context.Background()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("delay half", func(t *testing.T) {
				t.Parallel()
				addr, admin := start(t, px, faultDelayOn("sayHello", 50, faultDelay), false)
				c := dialThrift(t, addr, framedBinary, "")
				if _, err := c.EchoHeader(ctx, "k"); err != nil { // not matched: warms up
					t.Fatalf("echoHeader: %v", err)
				}
				var took []time.Duration
				for i := range 40 {
					name := fmt.Sprintf("d-%d", i)
					t0 := time.Now()
					r, err := c.SayHello(ctx, name)
					took = append(took, time.Since(t0))
					if err != nil || r != b.reply(name) {
						t.Fatalf("call %d: %q, %v; want %q", i, r, err, b.reply(name))
					}
				}
				slow := checkHalfDelayed(t, took)
				if admin != "" {
					waitAdminStat(t, admin, "traffic.fault.delays_injected", int64(slow))
					waitAdminStat(t, admin, "traffic.fault.active_faults", 0)
				}
			})
			t.Run("delay holds no other call", func(t *testing.T) {
				t.Parallel()
				const delay = 2 * time.Second
				addr, _ := start(t, px, faultDelayOn("echoHeader", 100, delay), true)
				slowC, fastC := dialThrift(t, addr, framedBinary, ""), dialThrift(t, addr, framedBinary, "")
				if _, err := fastC.SayHello(ctx, "warm"); err != nil {
					t.Fatal(err)
				}
				t0 := time.Now()
				delayed := make(chan error, 1)
				go func() { _, err := slowC.EchoHeader(ctx, "k"); delayed <- err }()
				for i := range 10 {
					name := fmt.Sprintf("c-%d", i)
					t1 := time.Now()
					r, err := fastC.SayHello(ctx, name)
					if d := time.Since(t1); d >= faultFast || err != nil || r != b.reply(name) {
						t.Errorf("call %d beside a delayed one: %q, %v after %v; want %q under %v", i, r, err, d, b.reply(name), faultFast)
					}
				}
				select {
				case err := <-delayed:
					t.Errorf("the delayed call ended after %v (%v) while the others ran; want it held %v", time.Since(t0), err, delay)
				default:
				}
				if err := <-delayed; err != nil || time.Since(t0) < delay {
					t.Errorf("the delayed call: %v after %v; want success after %v", err, time.Since(t0), delay)
				}
			})
			t.Run("abort one method", func(t *testing.T) {
				t.Parallel()
				addr, admin := start(t, px, faultAbortOn("sayHello"), true)
				c := dialThrift(t, addr, headerBinary, "")
				for i := range 5 {
					_, err := c.SayHello(ctx, fmt.Sprintf("a-%d", i))
					if ae := appException(err); ae == nil || ae.TypeId() != thrift.INTERNAL_ERROR || !strings.Contains(ae.Error(), "fault injected") {
						t.Errorf("sayHello %d: %v; want a TApplicationException INTERNAL_ERROR with the injected fault", i, err)
					}
					if got, err := c.EchoHeader(ctx, "k"); err != nil || got != "fault:" {
						t.Errorf("echoHeader %d (not matched): %q, %v; want it served", i, got, err)
					}
				}
				if n, _ := b.helloCount("a-"); n != 0 {
					t.Errorf("the backend got %d aborted sayHello calls, want 0", n)
				}
				if admin != "" {
					waitAdminStat(t, admin, "traffic.fault.aborts_injected", 5)
					waitAdminStat(t, admin, "traffic.fault.active_faults", 0)
				}
			})
		})
	}
}
