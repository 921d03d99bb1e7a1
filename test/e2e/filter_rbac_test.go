package e2e

// The RBAC filter (metaproxy.filters.rbac) through every host, with a
// dubbo-go provider and an Apache Thrift backend: a policy on methods
// denies one and lets another through (the client sees the protocol's
// native error: a Dubbo SERVER_ERROR response, a Thrift
// TApplicationException UNKNOWN), and policies on the client's address
// (127.0.0.0/8 allowed, 127.0.0.1/32 denied). The standalone proxy's rbac
// counters are read from its admin listener (the ABI host has none).

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/harness"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
)

const (
	rbacType   = "type.googleapis.com/metaproxy.filters.rbac.v1.RBAC"
	rbacDenied = "metaproxy: RBAC: access denied"
	// statusServerError is Dubbo's SERVER_ERROR, what a denial becomes.
	statusServerError = 80
)

// rbacFilters is a meta_protocol_filters list: the RBAC filter with
// stat_prefix "rbac_e2e." and the rules (and shadow rules, when not nil),
// then the router.
func rbacFilters(rules, shadow map[string]any) []harness.Filter {
	cfg := map[string]any{"@type": rbacType, "stat_prefix": "rbac_e2e.", "rules": rules}
	if shadow != nil {
		cfg["shadow_rules"] = shadow
	}
	return []harness.Filter{{Name: "metaproxy.filters.rbac", Config: cfg}, {Name: "aeraki.meta_protocol.filters.router"}}
}

// rbacPolicy is an RBAC with action and one policy of one permission and
// one principal.
func rbacPolicy(action string, permission, principal map[string]any) map[string]any {
	return map[string]any{"action": action, "policies": map[string]any{"p": map[string]any{
		"permissions": []any{permission}, "principals": []any{principal}}}}
}

var anyRule = map[string]any{"any": true}

func methodIs(m string) map[string]any {
	return map[string]any{"header": map[string]any{"name": "method", "string_match": map[string]any{"exact": m}}}
}

func remoteIP(prefix string, n int) map[string]any {
	return map[string]any{"direct_remote_ip": map[string]any{"address_prefix": prefix, "prefix_len": n}}
}

// checkRBACStats checks the standalone proxy's rbac counters (admin "" for
// the ABI host: nothing to check).
func checkRBACStats(t *testing.T, admin string, want map[string]int64) {
	t.Helper()
	if admin == "" {
		return
	}
	for name, n := range want {
		if got := adminStat(admin, "rbac_e2e.rbac."+name); got != n {
			t.Errorf("rbac_e2e.rbac.%s = %d, want %d", name, got, n)
		}
	}
}

func TestFilterRBACDubbo(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "rbac")
	start := func(t *testing.T, px harness.Proxy, rules, shadow map[string]any) (string, string) {
		b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
			harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}})
		b.Listeners[0].Proxy.Filters = rbacFilters(rules, shadow)
		return trafficStart(t, px, b)
	}
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("method", func(t *testing.T) {
				// DENY sleep of DemoService; everything else passes.
				addr, admin := start(t, px, rbacPolicy("DENY", map[string]any{"and_rules": map[string]any{"rules": []any{
					map[string]any{"header": map[string]any{"name": "interface", "exact_match": harness.DubboInterface}},
					methodIs("sleep")}}}, anyRule), nil)
				c := dialRaw(t, addr)
				for i := range 3 {
					name := fmt.Sprintf("r-%d", i)
					if r := call(t, c, sayHello(name)); r.String() != p.HelloFrom(name) {
						t.Errorf("sayHello %d (allowed): %q, want %q", i, r.String(), p.HelloFrom(name))
					}
					if r := call(t, c, sleepCall(1)); r.Status != statusServerError || !strings.Contains(r.Exception, rbacDenied) {
						t.Errorf("sleep %d (denied): status %d %q, want %d with %q", i, r.Status, r.String(), statusServerError, rbacDenied)
					}
				}
				// The connection is still good after denials.
				if r := call(t, c, sayHello("after")); r.String() != p.HelloFrom("after") {
					t.Errorf("sayHello after denials: %q", r.String())
				}
				// The dubbo-go consumer: sayHello passes, sleep is an error.
				if lines := consumerLines(t, addr, false, "-name", "go"); len(lines) != 1 || lines[0] != p.HelloFrom("go") {
					t.Errorf("dubbo-go consumer sayHello: %q, want %q", lines, p.HelloFrom("go"))
				}
				lines := consumerLines(t, addr, true, "-method", "sleep", "-name", "1")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR ") || !strings.Contains(lines[0], "access denied") {
					t.Errorf("dubbo-go consumer sleep: %q, want an ERROR line with the RBAC denial", lines)
				}
				checkRBACStats(t, admin, map[string]int64{"allowed": 5, "denied": 4, "shadow_allowed": 0, "shadow_denied": 0})
			})
			t.Run("source CIDR allowed", func(t *testing.T) {
				// ALLOW from 127.0.0.0/8; shadow rules that would deny
				// 127.0.0.1/32 only count.
				addr, admin := start(t, px, rbacPolicy("ALLOW", anyRule, remoteIP("127.0.0.0", 8)),
					rbacPolicy("DENY", anyRule, remoteIP("127.0.0.1", 32)))
				c := dialRaw(t, addr)
				for i := range 3 {
					name := fmt.Sprintf("c-%d", i)
					if r := call(t, c, sayHello(name)); r.String() != p.HelloFrom(name) {
						t.Errorf("sayHello %d from 127.0.0.1 (allowed): %q", i, r.String())
					}
				}
				if lines := consumerLines(t, addr, false, "-name", "go"); len(lines) != 1 || lines[0] != p.HelloFrom("go") {
					t.Errorf("dubbo-go consumer: %q, want %q", lines, p.HelloFrom("go"))
				}
				checkRBACStats(t, admin, map[string]int64{"allowed": 4, "denied": 0, "shadow_allowed": 0, "shadow_denied": 4})
			})
			t.Run("source CIDR denied", func(t *testing.T) {
				addr, admin := start(t, px, rbacPolicy("DENY", anyRule, remoteIP("127.0.0.1", 32)), nil)
				c := dialRaw(t, addr)
				if r := call(t, c, sayHello("x")); r.Status != statusServerError || !strings.Contains(r.Exception, rbacDenied) {
					t.Errorf("sayHello from 127.0.0.1 (denied): status %d %q", r.Status, r.String())
				}
				lines := consumerLines(t, addr, true, "-name", "go")
				if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR ") || !strings.Contains(lines[0], "access denied") {
					t.Errorf("dubbo-go consumer from 127.0.0.1: %q, want an ERROR line with the RBAC denial", lines)
				}
				checkRBACStats(t, admin, map[string]int64{"allowed": 0, "denied": 2})
			})
		})
	}
}

func TestFilterRBACThrift(t *testing.T) {
	t.Parallel()
	b := startThriftBackend(t, "rbac")
	start := func(t *testing.T, px harness.Proxy, rules map[string]any) (string, string) {
		bs := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil, backendCluster("c", b))
		bs.Listeners[0].Proxy.Filters = rbacFilters(rules, nil)
		return trafficStart(t, px, bs)
	}
	denied := func(t *testing.T, what string, err error) {
		t.Helper()
		ae := appException(err)
		if ae == nil || ae.TypeId() != thrift.UNKNOWN_APPLICATION_EXCEPTION || !strings.Contains(ae.Error(), rbacDenied) {
			t.Errorf("%s: %v, want a TApplicationException UNKNOWN with %q", what, err, rbacDenied)
		}
	}
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			t.Run("method", func(t *testing.T) {
				// ALLOW sayHello only: echoHeader is denied.
				addr, admin := start(t, px, rbacPolicy("ALLOW", methodIs("sayHello"), anyRule))
				for _, cfg := range []struct {
					name string
					cfg  thriftpeer.Config
				}{{"framed", framedBinary}, {"header", headerBinary}} {
					c := dialThrift(t, addr, cfg.cfg, "")
					for i := range 2 {
						name := fmt.Sprintf("%s-%d", cfg.name, i)
						if r, err := c.SayHello(context.Background(), name); err != nil || r != b.reply(name) {
							t.Errorf("%s sayHello %d (allowed): %q, %v", cfg.name, i, r, err)
						}
						_, err := c.EchoHeader(context.Background(), "k")
						denied(t, cfg.name+" echoHeader", err)
					}
				}
				checkRBACStats(t, admin, map[string]int64{"allowed": 4, "denied": 4})
			})
			t.Run("source CIDR", func(t *testing.T) {
				addr, _ := start(t, px, rbacPolicy("ALLOW", anyRule, remoteIP("127.0.0.0", 8)))
				if r, err := dialThrift(t, addr, framedBinary, "").SayHello(context.Background(), "in"); err != nil || r != b.reply("in") {
					t.Errorf("sayHello from 127.0.0.1, 127.0.0.0/8 allowed: %q, %v", r, err)
				}
				addr, admin := start(t, px, rbacPolicy("DENY", anyRule, remoteIP("127.0.0.1", 32)))
				_, err := dialThrift(t, addr, framedBinary, "").SayHello(context.Background(), "out")
				denied(t, "sayHello from 127.0.0.1, 127.0.0.1/32 denied", err)
				checkRBACStats(t, admin, map[string]int64{"allowed": 0, "denied": 1})
			})
		})
	}
}
