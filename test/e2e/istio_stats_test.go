package e2e

// Istio's standard metrics through two chained standalone sidecars, as in a
// mesh: the client → an outbound sidecar → an inbound sidecar → a dubbo-go
// provider, each sidecar with metadata_exchange, istio_stats and the
// router and its own node identity in its bootstrap. The sidecars learn
// each other's identity from x-envoy-peer-metadata and report the same
// peer labels; istio_requests_total per response_code matches what the
// client saw, through good calls, callee exceptions, unmatched calls and
// calls while the provider is down.

import (
	"io"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

const (
	mxType         = "type.googleapis.com/aeraki.meta_protocol_proxy.filters.metadata_exchange.v1alpha.MetadataExchange"
	istioStatsType = "type.googleapis.com/aeraki.meta_protocol_proxy.filters.istio_stats.v1alpha.IstioStats"
	demoHost       = "org.apache.dubbo.samples.basic.api.demoservice"
)

// istioFilters is Aeraki's sidecar chain: metadata_exchange, istio_stats,
// router.
func istioFilters(destService string) []harness.Filter {
	return []harness.Filter{
		{Name: "aeraki.meta_protocol.filters.metadata_exchange", Config: map[string]any{"@type": mxType}},
		{Name: "aeraki.meta_protocol.filters.istio_stats", Config: map[string]any{"@type": istioStatsType, "destination_service": destService}},
		{Name: "aeraki.meta_protocol.filters.router"},
	}
}

// withNode renders b with an Envoy bootstrap node.
func withNode(t *testing.T, b harness.Bootstrap, node map[string]any) string {
	t.Helper()
	var top map[string]any
	if err := yaml.Unmarshal([]byte(b.MustRender()), &top); err != nil {
		t.Fatal(err)
	}
	top["node"] = node
	out, err := yaml.Marshal(top)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func istioNode(id, workload, ns, app, version, cluster string) map[string]any {
	return map[string]any{"id": id, "cluster": workload + "." + ns, "metadata": map[string]any{
		"NAME": workload + "-pod", "NAMESPACE": ns, "WORKLOAD_NAME": workload, "CLUSTER_ID": cluster, "MESH_ID": "mesh1",
		"SERVICE_ACCOUNT": app, "LABELS": map[string]any{"app": app, "version": version,
			"service.istio.io/canonical-name": app, "service.istio.io/canonical-revision": version}}}
}

// promSample is one line of Prometheus text.
type promSample struct {
	labels map[string]string
	value  float64
}

var (
	promLine  = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$`)
	promLabel = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// promScrape reads the admin's /stats/prometheus; nil when it cannot.
func promScrape(admin string) map[string][]promSample {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + admin + "/stats/prometheus")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	out := map[string][]promSample{}
	for _, line := range strings.Split(string(body), "\n") {
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		s := promSample{labels: map[string]string{}, value: v}
		for _, l := range promLabel.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out[m[1]] = append(out[m[1]], s)
	}
	return out
}

// byCode sums the samples of name by response_code.
func byCode(ss []promSample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		out[s.labels["response_code"]] += s.value
	}
	return out
}

// waitMetrics polls admin until istio_requests_total by response_code is
// want (the sidecar records an exchange just after answering it).
func waitMetrics(t *testing.T, name, admin string, want map[string]float64) map[string][]promSample {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last map[string][]promSample
	for {
		last = promScrape(admin)
		if last != nil && maps.Equal(byCode(last["istio_requests_total"]), want) {
			return last
		}
		if time.Now().After(deadline) {
			if last == nil {
				t.Fatalf("%s: no /stats/prometheus on the admin listener %s within 30 s", name, admin)
			}
			t.Fatalf("%s: istio_requests_total by response_code = %v, want %v (what the client saw)\n%v", name,
				byCode(last["istio_requests_total"]), want, last["istio_requests_total"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIstioStatsDubboSidecars runs the outbound sidecar through every host
// (in the plugin, its node comes from plugin_config and its metrics from
// metrics_address: the ABI host's conversion puts the bootstrap's node and
// admin address there); the inbound one is a standalone proxy.
func TestIstioStatsDubboSidecars(t *testing.T) {
	t.Parallel()
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			testIstioSidecars(t, px)
		})
	}
}

func testIstioSidecars(t *testing.T, px harness.Proxy) {
	p := harness.StartDubboProvider(t, "istio")

	// The inbound sidecar, in front of the provider: sayHello and fail only.
	inPort, inAdmin := harness.FreePort(t), harness.FreePort(t)
	inCluster := "inbound|" + strconv.Itoa(inPort) + "||"
	in := harness.Bootstrap{AdminPort: inAdmin, Listeners: []harness.Listener{{Port: inPort, Proxy: harness.MetaProtocolProxy{
		StatPrefix: inCluster, Protocol: "dubbo", Multiplexing: true, Filters: istioFilters(demoHost),
		Routes: []harness.Route{
			{Name: "hello", Match: []harness.Match{ifaceMatch, methodMatch("sayHello")}, Cluster: inCluster},
			{Name: "fail", Match: []harness.Match{ifaceMatch, methodMatch("fail")}, Cluster: inCluster},
		},
	}}}, Clusters: []harness.Cluster{{Name: inCluster, Endpoints: []string{p.Addr()}}}}
	serverNode := istioNode("sidecar~10.0.0.2~demo-provider-pod.backend~backend.svc.cluster.local",
		"demo-provider", "backend", "demo-provider", "v2", "cluster-b")
	inAddr := harness.Standalone{}.Start(t, withNode(t, in, serverNode))

	// The outbound sidecar, next to the client: every DemoService call.
	outPort, outAdmin := harness.FreePort(t), harness.FreePort(t)
	outCluster := "outbound|" + strconv.Itoa(inPort) + "||" + demoHost
	out := harness.Bootstrap{AdminPort: outAdmin, Listeners: []harness.Listener{{Port: outPort, Proxy: harness.MetaProtocolProxy{
		StatPrefix: outCluster, Protocol: "dubbo", Multiplexing: true, Filters: istioFilters(demoHost),
		Routes: []harness.Route{{Name: "demo", Match: []harness.Match{ifaceMatch}, Cluster: outCluster}},
	}}}, Clusters: []harness.Cluster{{Name: outCluster, Endpoints: []string{inAddr}}}}
	clientNode := istioNode("sidecar~10.0.0.1~demo-consumer-pod.frontend~frontend.svc.cluster.local",
		"demo-consumer", "frontend", "demo-consumer", "v1", "cluster-a")
	outAddr := px.Start(t, withNode(t, out, clientNode))

	c := dialRaw(t, outAddr)
	seen := map[string]float64{} // what the client saw, as response codes
	do := func(what string, req rawdubbo.Call, wantOK bool) {
		t.Helper()
		r := call(t, c, req)
		if r.OK() != wantOK {
			t.Errorf("%s: OK %v (%q), want %v", what, r.OK(), r.String(), wantOK)
		}
		if r.OK() {
			seen["0"]++
		} else {
			seen["1"]++
		}
	}
	for i := range 5 {
		do("sayHello", sayHello("istio-"+strconv.Itoa(i)), true)
	}
	for range 3 {
		do("fail", rawdubbo.Call{Interface: harness.DubboInterface, Method: "fail", Args: []any{"kaput"}}, false)
	}
	for range 2 { // no route on the outbound sidecar
		do("other interface", rawdubbo.Call{Interface: "com.example.Nope", Method: "sayHello", Args: []any{"x"}}, false)
	}
	for range 2 { // no route on the inbound sidecar
		do("echoAttachment", rawdubbo.Call{Interface: harness.DubboInterface, Method: "echoAttachment", Args: []any{"k"}}, false)
	}
	p.Kill()
	for range 2 {
		do("sayHello, provider down", sayHello("down"), false)
	}
	inSeen := maps.Clone(seen) // the inbound sidecar never saw the outbound's unmatched calls
	inSeen["1"] -= 2

	outM := waitMetrics(t, "outbound", harness.Addr(outAdmin), seen)
	inM := waitMetrics(t, "inbound", harness.Addr(inAdmin), inSeen)
	for name, m := range map[string]map[string][]promSample{"outbound": outM, "inbound": inM} {
		want := seen["0"] + seen["1"]
		if name == "inbound" {
			want = inSeen["0"] + inSeen["1"]
		}
		var n float64
		for _, s := range m["istio_request_duration_milliseconds_count"] {
			n += s.value
		}
		if n != want {
			t.Errorf("%s: istio_request_duration_milliseconds counted %v calls, want %v", name, n, want)
		}
		for _, h := range []string{"istio_request_bytes_count", "istio_response_bytes_count"} {
			if len(m[h]) == 0 {
				t.Errorf("%s: no %s", name, h)
			}
		}
		nr := 0.0
		for _, s := range m["istio_requests_total"] {
			if s.labels["response_flags"] == "NR" {
				nr += s.value
			}
			if len(s.labels) != 24 {
				t.Errorf("%s: %d labels, want Istio's 24: %v", name, len(s.labels), s.labels)
			}
			for k, v := range s.labels {
				if v == "" {
					t.Errorf("%s: label %s is empty in %v", name, k, s.labels)
				}
			}
			if s.labels["request_protocol"] != "dubbo" {
				t.Errorf("%s: request_protocol %q", name, s.labels["request_protocol"])
			}
		}
		if nr != 2 {
			t.Errorf("%s: %v calls with response_flags NR, want 2", name, nr)
		}
	}

	// The calls the provider answered: both sidecars report the same
	// source and destination, the outbound as reporter "source".
	answered := func(m map[string][]promSample, reporter string) []map[string]string {
		var out []map[string]string
		for _, s := range m["istio_requests_total"] {
			if s.labels["response_flags"] == "-" && s.labels["destination_workload"] != "unknown" {
				if s.labels["reporter"] != reporter {
					t.Errorf("reporter %q, want %q", s.labels["reporter"], reporter)
				}
				l := maps.Clone(s.labels)
				delete(l, "reporter")
				out = append(out, l)
			}
		}
		return out
	}
	outA, inA := answered(outM, "source"), answered(inM, "destination")
	if len(outA) != 2 || len(inA) != 2 {
		t.Fatalf("answered series: outbound %v, inbound %v; want one with code 0 and one with code 1 each", outA, inA)
	}
	for _, o := range outA {
		if o["source_workload"] != "demo-consumer" || o["source_workload_namespace"] != "frontend" || o["source_cluster"] != "cluster-a" ||
			o["destination_workload"] != "demo-provider" || o["destination_workload_namespace"] != "backend" ||
			o["destination_canonical_revision"] != "v2" || o["destination_service"] != demoHost {
			t.Errorf("outbound labels %v", o)
		}
		var match bool
		for _, i := range inA {
			match = match || maps.Equal(o, i)
		}
		if !match {
			t.Errorf("outbound series %v has no twin on the inbound sidecar: %v", o, inA)
		}
	}
}
