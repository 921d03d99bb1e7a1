package e2e

// Upstream health with Apache Thrift peers, through every proxy host:
// circuit breakers, outlier detection and the TCP health check, as
// health_dubbo_test.go does with Dubbo. (The codec probe needs a protocol
// heartbeat, which Thrift lacks: a Thrift listener refuses it.)

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
)

// thriftOutcome is one sayHello call's reply or error and its duration.
type thriftOutcome struct {
	reply string
	err   error
	d     time.Duration
}

// concurrentThriftHellos makes n sayHello calls at once, each on its own
// connection to addr.
func concurrentThriftHellos(t *testing.T, addr string, n int) []thriftOutcome {
	t.Helper()
	clients := make([]*thriftpeer.Client, n)
	for i := range clients {
		clients[i] = dialThrift(t, addr, framedBinary, "")
	}
	out := make([]thriftOutcome, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			r, err := c.SayHello(context.Background(), fmt.Sprintf("cb-%d", i))
			out[i] = thriftOutcome{r, err, time.Since(start)}
		}()
	}
	wg.Wait()
	return out
}

// checkThriftBreaker checks as checkBreaker does: refusals are
// TApplicationExceptions naming the limit.
func checkThriftBreaker(t *testing.T, outs []thriftOutcome, b *thriftBackend, minOK, maxOK int, limit string) {
	t.Helper()
	ok, refused := 0, 0
	for i, o := range outs {
		switch ae := appException(o.err); {
		case o.err == nil && strings.HasPrefix(o.reply, "Hello cb-"):
			ok++
		case ae != nil && strings.Contains(ae.Error(), limit):
			refused++
			if o.d > time.Second {
				t.Errorf("call %d refused after %v: not at once", i, o.d.Round(time.Millisecond))
			}
		default:
			t.Errorf("call %d: %q, %v; want an answer or a TApplicationException naming %s", i, o.reply, o.err, limit)
		}
	}
	t.Logf("%d answered, %d refused; at most %d at once at the server", ok, refused, b.peak.Load())
	if ok < minOK || ok > maxOK || refused == 0 {
		t.Errorf("%d calls answered and %d refused, want %d-%d answered and the rest refused", ok, refused, minOK, maxOK)
	}
	if p := b.peak.Load(); p > int64(maxOK) && limit == "max_requests" || p > int64(minOK) && limit == "max_connections" {
		t.Errorf("the server ran %d calls at once, over the limit", p)
	}
}

func TestHealthThriftCircuitBreakers(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("max_requests", func(t *testing.T) {
				b := startThriftBackend(t, "slow", withDelay(2*time.Second))
				addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil,
					harness.Cluster{Name: "c", Endpoints: []string{b.Addr}, Extra: breakers(map[string]any{"max_requests": 4})}))
				checkThriftBreaker(t, concurrentThriftHellos(t, addr, 12), b, 4, 4, "max_requests")
				if admin != "" {
					if o := adminStat(admin, "upstream_rq_pending_overflow"); o < 1 {
						t.Errorf("cluster upstream_rq_pending_overflow = %d, want > 0", o)
					}
				}
			})
			t.Run("max_connections+max_pending_requests", func(t *testing.T) {
				b := startThriftBackend(t, "slow", withDelay(1500*time.Millisecond))
				bs := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil,
					harness.Cluster{Name: "c", Endpoints: []string{b.Addr}, Extra: breakers(map[string]any{"max_connections": 2, "max_pending_requests": 2})})
				bs.Listeners[0].Proxy.Multiplexing = false
				addr, _ := trafficStart(t, px, bs)
				checkThriftBreaker(t, concurrentThriftHellos(t, addr, 8), b, 2, 4, "max_connections")
			})
		})
	}
}

func TestHealthThriftOutlierDetection(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			bad, good := startThriftBackend(t, "bad", failing), startThriftBackend(t, "good")
			addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil,
				harness.Cluster{Name: "c", Endpoints: []string{bad.Addr, good.Addr}, Extra: outlierDetection(3, "1s", 50)}))
			c := dialThrift(t, addr, framedBinary, "")
			badCalls := func() int { n, _ := bad.helloCount(""); return n }
			for i := 0; badCalls() < 3; i++ {
				if i > 20 {
					t.Fatalf("the failing server got %d calls of %d", badCalls(), i)
				}
				c.SayHello(context.Background(), fmt.Sprintf("o-%d", i))
			}
			ejected := time.Now()
			for i := 0; time.Since(ejected) < 700*time.Millisecond; i++ {
				name := fmt.Sprintf("e-%d", i)
				if r, err := c.SayHello(context.Background(), name); (err != nil || r != good.reply(name)) && time.Since(ejected) < 700*time.Millisecond {
					t.Fatalf("call %v after the ejection: %q, %v; want the good server's answer", time.Since(ejected).Round(time.Millisecond), r, err)
				}
			}
			if n := badCalls(); n != 3 {
				t.Errorf("the ejected server got %d calls, want 3", n)
			}
			if admin != "" {
				if n := adminStat(admin, "outlier_detection.ejections_active"); n != 1 {
					t.Errorf("ejections_active = %d during the ejection, want 1", n)
				}
			}
			for i := 0; badCalls() == 3; i++ {
				if time.Since(ejected) > 10*time.Second {
					t.Fatalf("the ejected server got no call %v after its 1 s ejection", time.Since(ejected))
				}
				c.SayHello(context.Background(), fmt.Sprintf("r-%d", i))
			}
			back := time.Since(ejected)
			t.Logf("back after %v", back.Round(time.Millisecond))
			if back < time.Second {
				t.Errorf("the ejected server was back after %v, before its 1 s ejection", back)
			}
		})
	}
}

func TestHealthThriftTCPHealthCheck(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			up := startThriftBackend(t, "up")
			closed := harness.Addr(harness.FreePort(t))
			addr, admin := trafficStart(t, px, thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil,
				harness.Cluster{Name: "c", Endpoints: []string{closed, up.Addr}, Extra: healthCheck("0.2s", tcpCheck)}))
			if admin != "" && !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(admin, "membership_healthy") == 1 }) {
				t.Fatalf("membership_healthy = %d: the closed port is not marked unhealthy", adminStat(admin, "membership_healthy"))
			}
			c := dialThrift(t, addr, framedBinary, "")
			var connectFails int64
			if admin != "" {
				connectFails = adminStat(admin, "upstream_cx_connect_fail")
			}
			for i := range 10 {
				name := fmt.Sprintf("cp-%d", i)
				if r, err := c.SayHello(context.Background(), name); err != nil || r != up.reply(name) {
					t.Errorf("call %d: %q, %v; want the listening server's answer", i, r, err)
				}
			}
			if admin != "" {
				if n := adminStat(admin, "upstream_cx_connect_fail"); n != connectFails {
					t.Errorf("upstream_cx_connect_fail grew from %d to %d: the unhealthy host was picked", connectFails, n)
				}
			}
			// A process, killed at the end: an in-process server would wait
			// for the proxy's connection to close before the proxy stops.
			late := harness.StartThriftServerOn(t, "late", closed, "-transport", "framed", "-protocol", "binary")
			start := time.Now()
			for i := 0; ; i++ {
				name := fmt.Sprintf("lp-%d", i)
				if r, err := c.SayHello(context.Background(), name); err == nil && r == thriftpeer.Reply(name, late.Tag, late.Addr) {
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("the server on the once closed port got no call in 10 s")
				}
			}
			t.Logf("the port's server got calls %v after it listened", time.Since(start).Round(time.Millisecond))
		})
	}
}
