package e2e

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// TestDubboClusterFeatures covers, through every proxy host: weighted
// clusters, a STRICT_DNS cluster resolved by the proxy, and Aeraki's
// idle_timeout.
func TestDubboClusterFeatures(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p1 := harness.StartDubboProvider(t, "p1")
			p2 := harness.StartDubboProvider(t, "p2")
			iface := harness.Exact("interface", harness.DubboInterface)
			b := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
				StatPrefix: "features", Protocol: "dubbo", Multiplexing: true, IdleTimeout: "1s",
				Routes: []harness.Route{
					{Name: "dns", Match: []harness.Match{iface, harness.Exact("x-route", "dns")}, Cluster: "by-name"},
					{Name: "split", Match: []harness.Match{iface}, Weighted: []harness.WeightedCluster{{Name: "c1", Weight: 1}, {Name: "c2", Weight: 1}}},
				},
			}}}, Clusters: []harness.Cluster{
				{Name: "c1", Endpoints: []string{p1.Addr()}},
				{Name: "c2", Endpoints: []string{p2.Addr()}},
				{Name: "by-name", Endpoints: []string{"localhost:" + strconv.Itoa(p2.Port)}, Extra: map[string]any{"type": "STRICT_DNS"}},
			}}
			addr := px.Start(t, b.MustRender())
			c := dialRaw(t, addr)

			t.Run("weighted clusters", func(t *testing.T) {
				seen := map[string]int{}
				for range 40 {
					r := call(t, c, sayHello("w"))
					seen[r.String()]++
				}
				// An even split misses a provider in 40 calls with
				// probability 2^-39.
				if seen[p1.HelloFrom("w")] == 0 || seen[p2.HelloFrom("w")] == 0 || len(seen) != 2 {
					t.Errorf("40 calls split as %v, want both providers", seen)
				}
			})
			t.Run("STRICT_DNS", func(t *testing.T) {
				dns := sayHello("dns")
				dns.Attachments = map[string]string{"x-route": "dns"}
				if r := call(t, c, dns); r.String() != p2.HelloFrom("dns") {
					t.Errorf("call to the cluster named by host name: %q", r.String())
				}
			})
			t.Run("idle_timeout", func(t *testing.T) {
				idle := dialRaw(t, addr)
				if r := call(t, idle, sayHello("idle")); !r.OK() {
					t.Fatalf("first call: %q", r.String())
				}
				select {
				case <-idle.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("a connection idle for longer than idle_timeout (1s) is still open")
				}
			})
		})
	}
}

// TestStandaloneAdminStats: the admin listener reports Aeraki's counters.
func TestStandaloneAdminStats(t *testing.T) {
	p := harness.StartDubboProvider(t, "p1")
	admin := harness.FreePort(t)
	b := harness.Bootstrap{AdminPort: admin, Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "stats", Protocol: "dubbo", Multiplexing: true, Routes: dubboRoutes(),
	}}}, Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{p.Addr()}}, {Name: "c2", Endpoints: []string{p.Addr()}}}}
	addr := harness.Standalone{}.Start(t, b.MustRender())
	c := dialRaw(t, addr)
	for range 3 {
		call(t, c, sayHello("s"))
	}
	nope := sayHello("s")
	nope.Method = "nope"
	call(t, c, nope) // no route: a local error reply
	get := func(path string) string {
		resp, err := http.Get("http://" + harness.Addr(admin) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	stats := get("/stats")
	for _, want := range []string{
		"meta_protocol.dubbo.stats.request_decoding_success: 4",
		"meta_protocol.dubbo.stats.request_twoway: 3", // routed; the fourth got a local reply
		"meta_protocol.dubbo.stats.response_success: 3",
		"meta_protocol.dubbo.stats.local_response_business_exception: 1",
	} {
		if !strings.Contains(stats, want) {
			t.Errorf("/stats lacks %q:\n%s", want, stats)
		}
	}
	m := get("/metrics")
	for _, want := range []string{
		"# TYPE metaproxy_request_twoway_total counter",
		`metaproxy_request_twoway_total{protocol="dubbo",stat_prefix="stats"} 3`,
		"# TYPE metaproxy_request_active gauge",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
}
