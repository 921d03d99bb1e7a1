package e2e

// The local rate limit filter through every host, with dubbo-go and Apache
// Thrift peers: Aeraki's end-to-end expectation (a 2-token bucket lets 2 of
// 10 calls through; the others get the protocol's overloaded error), with
// the bucket shared by every connection of the listener, and a condition
// that limits one method while another passes.

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/test/harness"
)

const lrlType = "type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit"

// localRateLimit is a meta_protocol_filters list: Aeraki's local rate
// limit with a 2-token bucket per 30 s for method limited (or every
// method when limited is ""), then the router. It comes as a TypedStruct,
// as Aeraki's control plane sends it, when typed is false.
func localRateLimit(limited string, typed bool) []harness.Filter {
	bucket := map[string]any{"max_tokens": 2, "tokens_per_fill": 2, "fill_interval": "30s"}
	cfg := map[string]any{"stat_prefix": "lrl"}
	if limited == "" {
		cfg["token_bucket"] = bucket
	} else {
		cfg["conditions"] = []any{map[string]any{"match": map[string]any{"metadata": []any{
			map[string]any{"name": "method", "exact_match": limited}}}, "token_bucket": bucket}}
	}
	if typed {
		cfg["@type"] = lrlType
	} else {
		cfg = map[string]any{"@type": "type.googleapis.com/udpa.type.v1.TypedStruct", "type_url": lrlType, "value": cfg}
	}
	return []harness.Filter{{Name: "aeraki.meta_protocol.filters.local_ratelimit", Config: cfg}, {Name: "aeraki.meta_protocol.filters.router"}}
}

func TestFilterLocalRateLimitDubbo(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "lrl")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, nil,
				harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}})
			b.Listeners[0].Proxy.Filters = localRateLimit("", true)
			addr, admin := trafficStart(t, px, b)
			ok, limited := 0, 0
			for i := range 10 { // each call on a connection of its own: the bucket is the listener's
				name := fmt.Sprintf("l-%d", i)
				switch r := call(t, dialRaw(t, addr), sayHello(name)); {
				case r.String() == p.HelloFrom(name):
					ok++
				case r.Status == statusOverloaded && strings.Contains(r.Exception, "rate limited"):
					limited++
				default:
					t.Errorf("call %d: status %d %q", i, r.Status, r.String())
				}
			}
			if ok != 2 || limited != 8 {
				t.Errorf("%d calls passed and %d were rate limited, want 2 and 8 (Aeraki's TestLocalRateLimit)", ok, limited)
			}
			// The dubbo-go consumer surfaces the limit as an error.
			lines := consumerLines(t, addr, true, "-name", "go")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "ERROR ") || !strings.Contains(lines[0], "rate limited") {
				t.Errorf("dubbo-go consumer over the limit: %q, want an ERROR line with the rate limit", lines)
			}
			if admin != "" {
				if o, l := adminStat(admin, "lrl.local_rate_limit.ok"), adminStat(admin, "lrl.local_rate_limit.rate_limited"); o != 2 || l != 9 {
					t.Errorf("local_rate_limit.ok = %d, rate_limited = %d; want 2 and 9", o, l)
				}
			}
		})
	}
}

func TestFilterLocalRateLimitThrift(t *testing.T) {
	t.Parallel()
	b := startThriftBackend(t, "lrl")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			bs := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, nil, backendCluster("c", b))
			bs.Listeners[0].Proxy.Filters = localRateLimit("sayHello", false) // a TypedStruct, as Aeraki sends it
			addr, admin := trafficStart(t, px, bs)
			c := dialThrift(t, addr, framedBinary, "")
			ok, limited := 0, 0
			for i := range 10 {
				name := fmt.Sprintf("l-%d", i)
				r, err := c.SayHello(context.Background(), name)
				switch ae := appException(err); {
				case err == nil && r == b.reply(name):
					ok++
				case ae != nil && strings.Contains(ae.Error(), "rate limited"):
					limited++
				default:
					t.Errorf("call %d: %q, %v", i, r, err)
				}
			}
			if ok != 2 || limited != 8 {
				t.Errorf("%d calls passed and %d were rate limited, want 2 and 8", ok, limited)
			}
			// echoHeader matches no condition and there is no default bucket: never limited.
			for i := range 5 {
				if _, err := c.EchoHeader(context.Background(), "k"); err != nil {
					t.Errorf("echoHeader call %d (no bucket applies): %v", i, err)
				}
			}
			if admin != "" {
				if o, l := adminStat(admin, "lrl.local_rate_limit.ok"), adminStat(admin, "lrl.local_rate_limit.rate_limited"); o != 2 || l != 8 {
					t.Errorf("local_rate_limit.ok = %d, rate_limited = %d; want 2 and 8", o, l)
				}
			}
		})
	}
}
