package e2e

// Prometheus metrics through both hosts: the standalone proxy serves them
// on its admin listener (/stats/prometheus, where Istio scrapes Envoy, and
// /metrics); the plugin, whose metrics Envoy's admin cannot show, on its
// plugin_config metrics_address (the ABI host's conversion puts the
// bootstrap's admin address there). Both render the same engine stats with
// prometheus/client_golang: the listener's stats, Envoy's cluster stats
// with the upstream_rq_time histogram, and the Go runtime's.

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// scrape returns the Prometheus text at http://addr/path.
func scrape(t *testing.T, addr, path string) string {
	t.Helper()
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("scrape %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape %s%s: %s\n%s", addr, path, resp.Status, body)
	}
	return string(body)
}

// sample returns the value of the sample whose name and labels are given
// (labels as written: `protocol="dubbo",stat_prefix="traffic"`), -1 if absent.
func sample(text, name, labels string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{` + regexp.QuoteMeta(labels) + `\} (\S+)$`)
	if labels == "" {
		re = regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	}
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestPrometheusMetrics(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "metrics")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			b := dubboTraffic(t, []harness.Route{{Name: "hello", Match: []harness.Match{ifaceMatch, methodMatch("sayHello")}, Cluster: "c"}}, nil,
				harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}})
			b.AdminPort = harness.FreePort(t) // the plugin's metrics_address in the ABI host
			addr := px.Start(t, b.MustRender())
			metrics := harness.Addr(b.AdminPort)
			c := dialRaw(t, addr)
			const good, unrouted = 7, 3
			for i := range good {
				name := fmt.Sprintf("m-%d", i)
				if r := call(t, c, sayHello(name)); r.String() != p.HelloFrom(name) {
					t.Fatalf("call %d: %q", i, r.String())
				}
			}
			for i := range unrouted {
				req := sayHello("x")
				req.Method = fmt.Sprintf("nope%d", i)
				if r := call(t, c, req); r.OK() {
					t.Fatalf("unrouted call %d answered", i)
				}
			}
			if err := harness.WaitPort(metrics, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/stats/prometheus", "/metrics"} {
				text := scrape(t, metrics, path)
				listener := `protocol="dubbo",stat_prefix="traffic"`
				checks := []struct {
					name, labels string
					want         float64
				}{
					{"metaproxy_request_total", listener, good}, // routed requests, as Aeraki counts them
					{"metaproxy_response_success_total", listener, good},
					{"metaproxy_local_response_business_exception_total", listener, unrouted},
					{"envoy_cluster_upstream_rq_total", `envoy_cluster_name="c"`, good},
					{"envoy_cluster_upstream_rq_time_count", `envoy_cluster_name="c"`, good},
					{"envoy_cluster_membership_healthy", `envoy_cluster_name="c"`, 1},
				}
				for _, ck := range checks {
					if got := sample(text, ck.name, ck.labels); got != ck.want {
						t.Errorf("%s: %s{%s} = %v, want %v", path, ck.name, ck.labels, got, ck.want)
					}
				}
				for _, family := range []string{"# TYPE envoy_cluster_upstream_rq_time histogram", "# TYPE metaproxy_request_total counter", "go_goroutines "} {
					if !strings.Contains(text, family) {
						t.Errorf("%s lacks %q", path, family)
					}
				}
				if t.Failed() {
					t.Logf("%s:\n%s", path, text)
					break
				}
			}
			// Envoy's text form too, in both hosts.
			if stats := scrape(t, metrics, "/stats"); !strings.Contains(stats, fmt.Sprintf("cluster.c.upstream_rq_total: %d\n", good)) {
				t.Errorf("/stats lacks cluster.c.upstream_rq_total: %d:\n%s", good, stats)
			}
		})
	}
}
