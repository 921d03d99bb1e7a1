package e2e

// Driven by a control plane: routes over RDS as Aeraki's control plane
// serves them, clusters over CDS and endpoints over EDS from a real
// go-control-plane server, swapped under 16 live dubbo-go callers in every
// proxy host. No call may fail and no connection may close.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

const (
	xdsNode    = "sidecar~127.0.0.1~consumer.default~default.svc.cluster.local"
	routeName  = "org.apache.dubbogo.samples.api.Greeter_20880"
	xdsCluster = "aeraki-xds"
)

// xdsServerCluster is the bootstrap cluster that reaches the management
// server, declared as Envoy declares gRPC clusters.
func xdsServerCluster(addr string) harness.Cluster {
	return harness.Cluster{Name: xdsCluster, Endpoints: []string{addr}, Extra: map[string]any{"http2_protocol_options": map[string]any{}}}
}

// apiSource is a config_source on the management server's own services.
func apiSource() map[string]any {
	return map[string]any{"resource_api_version": "V3", "api_config_source": map[string]any{
		"api_type": "GRPC", "transport_api_version": "V3",
		"grpc_services": []any{map[string]any{"envoy_grpc": map[string]any{"cluster_name": xdsCluster}}}}}
}

func xdsNodeSection() map[string]any {
	return map[string]any{"id": xdsNode, "cluster": "consumer.default"}
}

// routeTo is Aeraki's RDS answer sending every DemoService call to cluster.
func routeTo(cluster string) *routev3.RouteConfiguration {
	return harness.AerakiRoute(routeName, harness.AerakiMetaRoute{Name: "default",
		Match: map[string]string{"interface": harness.DubboInterface}, Cluster: cluster})
}

// dubboCallers runs n raw Dubbo callers on connections of their own and
// records who served each call.
type dubboCallers struct {
	*callers
	last []atomic.Pointer[string] // the server of each caller's last call
}

func startDubboCallers(t *testing.T, addr string, n int) *dubboCallers {
	conns := make([]*rawdubbo.Conn, n)
	for i := range conns {
		conns[i] = dialRaw(t, addr)
	}
	dc := &dubboCallers{last: make([]atomic.Pointer[string], n)}
	dc.callers = startCallers(t, n, func(i, seq int) error {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := conns[i].Call(ctx, sayHello(fmt.Sprintf("c%d-%d", i, seq)))
		if err != nil {
			return err
		}
		by := servedBy(r.String())
		if by == "" {
			return fmt.Errorf("reply %q", r.String())
		}
		dc.last[i].Store(&by)
		return nil
	})
	return dc
}

// adminGet returns the body of an admin endpoint.
func adminGet(t *testing.T, admin, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// servedByIs makes one call on c and reports whether ident served it.
func servedByIs(c *rawdubbo.Conn, ident string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	r, err := c.Call(ctx, sayHello("probe"))
	return err == nil && servedBy(r.String()) == ident
}

// allOn reports whether every caller's last call was served by ident.
func (dc *dubboCallers) allOn(ident string) bool {
	for i := range dc.last {
		if p := dc.last[i].Load(); p == nil || *p != ident {
			return false
		}
	}
	return true
}

func TestXDS(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Run("RDS", func(t *testing.T) { testXDSRoutes(t, px) })
			t.Run("CDS+EDS over ADS", func(t *testing.T) { testXDSEndpoints(t, px) })
		})
	}
}

// testXDSRoutes: no routes until the server answers (native errors, no
// hang); then routes switched A→B→A ten times under 16 callers, a NACKed
// bad update, and a management server restart — zero failed calls.
func testXDSRoutes(t *testing.T, px harness.Proxy) {
	a, b := harness.StartDubboProvider(t, "A"), harness.StartDubboProvider(t, "B")
	xs := harness.StartXDSServer(t, harness.XDSOptions{})
	bs := dubboTraffic(t, nil, map[string]any{"rds": map[string]any{"config_source": apiSource(), "route_config_name": routeName}},
		harness.Cluster{Name: "outbound|20880||a", Endpoints: []string{a.Addr()}},
		harness.Cluster{Name: "outbound|20880||b", Endpoints: []string{b.Addr()}},
		xdsServerCluster(xs.Addr))
	bs.Top = map[string]any{"node": xdsNodeSection()}
	addr, admin := trafficStart(t, px, bs)

	// The server has no snapshot for the node yet: a native error at once.
	c := dialRaw(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	r, err := c.Call(ctx, sayHello("early"))
	cancel()
	if err != nil || r.OK() || !strings.Contains(r.String(), "no route") {
		t.Fatalf("before any route arrived: %v %q, want a native no-route error", err, r.String())
	}

	targets := map[string]string{"outbound|20880||a": ident(a), "outbound|20880||b": ident(b)}
	var lags []time.Duration
	push := func(version, cluster string) {
		t.Helper()
		pushed := time.Now()
		xs.SetRoutes(t, xdsNode, version, routeTo(cluster))
		xs.WaitACK(t, resource.RouteType, version, 10*time.Second)
		if !harness.WaitFor(t, 10*time.Second, func() bool { return servedByIs(c, targets[cluster]) }) {
			t.Fatalf("version %s: calls still not served by %s", version, cluster)
		}
		lags = append(lags, time.Since(pushed))
	}
	push("1", "outbound|20880||a")
	dc := startDubboCallers(t, addr, 16)
	for i := range 10 {
		to := []string{"outbound|20880||b", "outbound|20880||a"}[i%2]
		push(fmt.Sprint(i+2), to)
		if !harness.WaitFor(t, 10*time.Second, func() bool { return dc.allOn(targets[to]) }) {
			t.Fatalf("switch %d: not every caller reached %s", i+1, to)
		}
	}

	// A bad update is NACKed with its error; traffic keeps the last routes.
	bad := routeTo("outbound|20880||b")
	bad.VirtualHosts = append(bad.VirtualHosts, bad.VirtualHosts[0])
	xs.SetRoutes(t, xdsNode, "bad", bad)
	nack := xs.WaitNACK(t, resource.RouteType, 10*time.Second)
	if !strings.Contains(nack.ErrorDetail, "virtual hosts") || nack.Version != "11" {
		t.Errorf("NACK: version %q, error %q; want the last good version 11 and the reason", nack.Version, nack.ErrorDetail)
	}
	base := dc.oks()
	harness.WaitFor(t, 10*time.Second, func() bool { return dc.each(base, 20) })
	if !dc.allOn(ident(a)) {
		t.Error("a NACKed update changed where calls go")
	}

	// The management server restarts: callers see nothing; after it, a
	// new version still applies.
	xs.Stop()
	base = dc.oks()
	harness.WaitFor(t, 10*time.Second, func() bool { return dc.each(base, 20) })
	xs.Restart(t)
	push("12", "outbound|20880||b")
	if !harness.WaitFor(t, 10*time.Second, func() bool { return dc.allOn(ident(b)) }) {
		t.Fatal("after the restart, not every caller reached b")
	}

	ok, fails, errs := dc.stop()
	if fails != 0 {
		t.Errorf("%d of %d calls failed across route swaps, a NACK and a server restart:\n%s", fails, ok+fails, strings.Join(errs, "\n"))
	}
	slices.Sort(lags)
	t.Logf("%d calls by 16 callers; push to first call served by the new route: p50 %v, max %v over %d pushes",
		ok, lags[len(lags)/2].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond), len(lags))
	if admin != "" {
		if v := adminStat(admin, "traffic.rds."+routeName+".config_reload"); v < 12 {
			t.Errorf("rds config_reload = %d, want at least 12", v)
		}
		dump := adminGet(t, admin, "/config_dump")
		for _, want := range []string{"aeraki.meta_protocol_proxy.admin.v1alpha.RoutesConfigDump", `"version_info": "12"`, routeName, "BootstrapConfigDump"} {
			if !strings.Contains(dump, want) {
				t.Errorf("/config_dump lacks %s:\n%s", want, dump)
			}
		}
		if cl := adminGet(t, admin, "/clusters"); !strings.Contains(cl, "outbound|20880||b::"+b.Addr()+"::health_flags::healthy") {
			t.Errorf("/clusters does not list b's host as healthy:\n%s", cl)
		}
	}
}

// testXDSEndpoints: the cluster comes over CDS (type EDS, eds_config ads)
// and its endpoints over EDS on one ADS stream; the endpoint set changes
// under 16 callers — zero failed calls, each change followed.
func testXDSEndpoints(t *testing.T, px harness.Proxy) {
	a, b := harness.StartDubboProvider(t, "A"), harness.StartDubboProvider(t, "B")
	xs := harness.StartXDSServer(t, harness.XDSOptions{ADS: true})
	const svc = "outbound|20880||greeter.default.svc.cluster.local"
	xs.SetClusters(t, xdsNode, "1", &clusterv3.Cluster{Name: svc,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		ConnectTimeout:       durationpb.New(time.Second),
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{ServiceName: svc,
			EdsConfig: &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}})
	xs.SetEndpoints(t, xdsNode, "1", harness.EDSAssignment(svc, a.Addr()))
	bs := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: svc}}, nil, xdsServerCluster(xs.Addr))
	bs.Top = map[string]any{"node": xdsNodeSection(), "dynamic_resources": map[string]any{
		"ads_config": map[string]any{"api_type": "GRPC", "transport_api_version": "V3",
			"grpc_services": []any{map[string]any{"envoy_grpc": map[string]any{"cluster_name": xdsCluster}}}},
		"cds_config": map[string]any{"resource_api_version": "V3", "ads": map[string]any{}}}}
	addr, _ := trafficStart(t, px, bs)

	c := dialRaw(t, addr)
	if !harness.WaitFor(t, 20*time.Second, func() bool { return servedByIs(c, ident(a)) }) {
		t.Fatal("the CDS cluster with its EDS endpoints never served a call")
	}
	dc := startDubboCallers(t, addr, 16)
	sets := [][]*harness.DubboProvider{{b}, {a, b}, {a}, {b}}
	for i, set := range sets {
		var addrs []string
		for _, p := range set {
			addrs = append(addrs, p.Addr())
		}
		v := fmt.Sprint(i + 2)
		xs.SetEndpoints(t, xdsNode, v, harness.EDSAssignment(svc, addrs...))
		xs.WaitACK(t, resource.EndpointType, v, 10*time.Second)
		if len(set) == 1 && !harness.WaitFor(t, 10*time.Second, func() bool { return dc.allOn(ident(set[0])) }) {
			t.Fatalf("endpoints %v: not every caller reached %s", addrs, set[0].Tag)
		}
		base := dc.oks()
		harness.WaitFor(t, 10*time.Second, func() bool { return dc.each(base, 10) })
	}
	ok, fails, errs := dc.stop()
	if fails != 0 {
		t.Errorf("%d of %d calls failed across endpoint changes:\n%s", fails, ok+fails, strings.Join(errs, "\n"))
	}
	t.Logf("%d calls by 16 callers across %d EDS updates", ok, len(sets))
}

// TestEnvoyAdminEndpoints (the plugin only): with plugin_config's
// envoy_admin, the plugin routes to Envoy's own clusters, read from Envoy's
// admin API (here a fake serving Envoy's /clusters?format=json), and
// follows its changing host list and health under 16 callers.
func TestEnvoyAdminEndpoints(t *testing.T) {
	a, b := harness.StartDubboProvider(t, "A"), harness.StartDubboProvider(t, "B")
	ea := harness.StartEnvoyAdmin(t)
	const svc = "outbound|20880||greeter.default.svc.cluster.local"
	ea.SetCluster(svc, harness.AdminHost{Addr: a.Addr(), Healthy: true})
	ea.SetCluster("BlackHoleCluster")
	bs := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: svc}},
		map[string]any{"envoy_admin": map[string]any{"address": ea.Addr, "refresh_interval": "100ms"}})
	addr := harness.ABIHost{}.Start(t, bs.MustRender())

	c := dialRaw(t, addr)
	if !harness.WaitFor(t, 20*time.Second, func() bool { return servedByIs(c, ident(a)) }) {
		t.Fatal("Envoy's cluster, read from its admin, never served a call")
	}
	dc := startDubboCallers(t, addr, 16)
	steps := []struct {
		hosts []harness.AdminHost
		want  *harness.DubboProvider
	}{
		{[]harness.AdminHost{{Addr: b.Addr(), Healthy: true}}, b},
		{[]harness.AdminHost{{Addr: a.Addr(), Healthy: true}, {Addr: b.Addr(), Healthy: true}}, nil},
		{[]harness.AdminHost{{Addr: a.Addr(), Healthy: true}, {Addr: b.Addr(), Healthy: false}}, a},
		{[]harness.AdminHost{{Addr: a.Addr(), Healthy: false}, {Addr: b.Addr(), Healthy: true}}, b},
	}
	for i, st := range steps {
		ea.SetCluster(svc, st.hosts...)
		if st.want != nil && !harness.WaitFor(t, 10*time.Second, func() bool { return dc.allOn(ident(st.want)) }) {
			t.Fatalf("step %d: not every caller reached %s", i+1, st.want.Tag)
		}
		base := dc.oks()
		harness.WaitFor(t, 10*time.Second, func() bool { return dc.each(base, 10) })
	}
	ok, fails, errs := dc.stop()
	if fails != 0 {
		t.Errorf("%d of %d calls failed across Envoy's host changes:\n%s", fails, ok+fails, strings.Join(errs, "\n"))
	}
	t.Logf("%d calls by 16 callers across %d host-list changes; %d admin reads", ok, len(steps), ea.Requests())
}
