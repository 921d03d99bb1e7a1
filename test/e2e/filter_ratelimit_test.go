package e2e

// The global rate limit filter through every host, against the real
// envoyproxy/ratelimit service backed by a real redis-server, with
// dubbo-go and Apache Thrift peers: Aeraki's expectation (5 calls pass a
// limit of 5, the next are refused with the protocol's overloaded error —
// per hour here, not per minute: the service's windows follow the wall
// clock and a minute can end mid-test), the service killed mid-run with
// failure_mode_deny both ways (no call hangs), and the latency the check
// adds.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// rateLimitRules allows limit calls of sayHello per hour in domain.
func rateLimitRules(domain string, limit int) string {
	return fmt.Sprintf("domain: %s\ndescriptors:\n- key: method\n  value: sayHello\n  rate_limit: {unit: hour, requests_per_unit: %d}\n", domain, limit)
}

// globalRateLimit is a meta_protocol_filters list: Aeraki's global rate
// limit on method (every request: no match), then the router.
func globalRateLimit(domain string, deny bool, timeout string) []harness.Filter {
	cfg := map[string]any{"@type": "type.googleapis.com/aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.RateLimit",
		"domain": domain, "failure_mode_deny": deny, "timeout": timeout,
		"descriptors":        []any{map[string]any{"property": "method", "descriptor_key": "method"}},
		"rate_limit_service": map[string]any{"grpc_service": map[string]any{"envoy_grpc": map[string]any{"cluster_name": "rls"}}}}
	return []harness.Filter{{Name: "aeraki.meta_protocol.filters.ratelimit", Config: cfg}, {Name: "aeraki.meta_protocol.filters.router"}}
}

// rlsSetup is one proxy with the filter in front of a protocol's server.
type rlsSetup struct {
	addr, admin string
	svc         *harness.RateLimitService
}

func TestFilterGlobalRateLimit(t *testing.T) {
	t.Parallel()
	redis := harness.StartRedis(t)
	p := harness.StartDubboProvider(t, "rls")
	tb := startThriftBackend(t, "rls")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			// start runs a service and a proxy with the filter for protocol.
			start := func(t *testing.T, protocol string, deny bool, limit int) rlsSetup {
				domain := strings.ReplaceAll(t.Name(), "/", "-")
				svc := harness.StartRateLimitService(t, redis, rateLimitRules(domain, limit))
				rls := harness.Cluster{Name: "rls", Endpoints: []string{svc.Addr}}
				var b harness.Bootstrap
				if protocol == "dubbo" {
					b = dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
						harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}}, rls)
				} else {
					b = thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil, backendCluster("c", tb), rls)
				}
				b.Listeners[0].Proxy.Filters = globalRateLimit(domain, deny, "0.5s")
				addr, admin := trafficStart(t, px, b)
				return rlsSetup{addr, admin, svc}
			}
			for _, protocol := range []string{"dubbo", "thrift"} {
				t.Run(protocol, func(t *testing.T) {
					t.Parallel()
					hello := dubboHello(t, p)
					if protocol == "thrift" {
						hello = thriftHello(t, tb)
					}
					t.Run("5 per hour", func(t *testing.T) {
						s := start(t, protocol, true, 5)
						call := hello(s.addr)
						ok, limited := 0, 0
						for i := range 8 {
							switch err := call(fmt.Sprintf("g-%d", i)); {
							case err == nil:
								ok++
							case strings.Contains(err.Error(), "rate limited"):
								limited++
							default:
								t.Errorf("call %d: %v", i, err)
							}
						}
						if ok != 5 || limited != 3 {
							t.Errorf("%d calls passed and %d were rate limited, want 5 and 3 (a limit of 5)", ok, limited)
						}
						if s.admin != "" {
							if o, l := adminStat(s.admin, "traffic.ratelimit.ok"), adminStat(s.admin, "traffic.ratelimit.over_limit"); o != 5 || l != 3 {
								t.Errorf("ratelimit.ok = %d, over_limit = %d; want 5 and 3", o, l)
							}
						}
					})
					for _, deny := range []bool{true, false} {
						t.Run(fmt.Sprintf("service killed/failure_mode_deny=%v", deny), func(t *testing.T) {
							s := start(t, protocol, deny, 1000)
							call := hello(s.addr)
							for i := range 3 {
								if err := call(fmt.Sprintf("k-%d", i)); err != nil {
									t.Fatalf("call %d with the service up: %v", i, err)
								}
							}
							s.svc.Kill()
							for i := range 5 {
								began := time.Now()
								err := call(fmt.Sprintf("d-%d", i))
								if took := time.Since(began); took > 3*time.Second {
									t.Errorf("call %d with the service down took %v (timeout 0.5 s)", i, took)
								}
								switch {
								case deny && (err == nil || !strings.Contains(err.Error(), "rate limit service unavailable")):
									t.Errorf("call %d, service down, failure_mode_deny: %v; want the unavailable error", i, err)
								case !deny && err != nil:
									t.Errorf("call %d, service down, failure mode allow: %v", i, err)
								}
							}
							if s.admin != "" {
								if e := adminStat(s.admin, "traffic.ratelimit.error"); e != 5 {
									t.Errorf("ratelimit.error = %d, want 5", e)
								}
							}
						})
					}
				})
			}
			t.Run("latency", func(t *testing.T) { testRateLimitLatency(t, px, redis, p) })
		})
	}
}

// dubboHello returns a caller factory: a connection to addr and a function
// making one sayHello call on it, nil when p answered.
func dubboHello(t *testing.T, p *harness.DubboProvider) func(addr string) func(name string) error {
	return func(addr string) func(string) error {
		c := dialRaw(t, addr)
		return func(name string) error {
			r := call(t, c, sayHello(name))
			if r.String() != p.HelloFrom(name) {
				return fmt.Errorf("status %d: %s", r.Status, r.String())
			}
			return nil
		}
	}
}

func thriftHello(t *testing.T, b *thriftBackend) func(addr string) func(name string) error {
	return func(addr string) func(string) error {
		c := dialThrift(t, addr, framedBinary, "")
		return func(name string) error {
			r, err := c.SayHello(context.Background(), name)
			if err == nil && r != b.reply(name) {
				err = fmt.Errorf("reply %q", r)
			}
			return err
		}
	}
}

// testRateLimitLatency measures what the check adds to a Dubbo call: 200
// sequential calls through a proxy with the filter and through one
// without, p50 and p99 of each.
func testRateLimitLatency(t *testing.T, px harness.Proxy, redis string, p *harness.DubboProvider) {
	domain := strings.ReplaceAll(t.Name(), "/", "-")
	svc := harness.StartRateLimitService(t, redis, rateLimitRules(domain, 100000))
	route := []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}
	clusters := []harness.Cluster{{Name: "c", Endpoints: []string{p.Addr()}}, {Name: "rls", Endpoints: []string{svc.Addr}}}
	with := dubboTraffic(t, route, nil, clusters...)
	with.Listeners[0].Proxy.Filters = globalRateLimit(domain, true, "0.5s")
	without := dubboTraffic(t, route, nil, clusters...)
	measure := func(b harness.Bootstrap) (p50, p99 time.Duration) {
		addr, _ := trafficStart(t, px, b)
		c := dialRaw(t, addr)
		var ds []time.Duration
		for i := range 220 {
			name := fmt.Sprintf("lat-%d", i)
			start := time.Now()
			if r := call(t, c, sayHello(name)); r.String() != p.HelloFrom(name) {
				t.Fatalf("call %d: %q", i, r.String())
			}
			if i >= 20 { // warm-up
				ds = append(ds, time.Since(start))
			}
		}
		slices.Sort(ds)
		return ds[len(ds)/2], ds[len(ds)*99/100]
	}
	w50, w99 := measure(with)
	o50, o99 := measure(without)
	t.Logf("sequential Dubbo calls: p50 %v with the global rate limit check, %v without (+%v); p99 %v vs %v (+%v)",
		w50.Round(time.Microsecond), o50.Round(time.Microsecond), (w50 - o50).Round(time.Microsecond),
		w99.Round(time.Microsecond), o99.Round(time.Microsecond), (w99 - o99).Round(time.Microsecond))
}
