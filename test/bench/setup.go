package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/test/abihost"
	"github.com/metaproxy/metaproxy/test/harness"
)

// The proxies of a case, in table order.
const (
	Direct    = "direct"
	HAProxy   = "haproxy"
	Metaproxy = "metaproxy"
	ABIHost   = "metaproxy.so"
)

// Features a metaproxy row can add to the plain configuration, as the
// suffix of its kind ("metaproxy+mirror"): its cost is the ratio to the
// plain row of the same proxy in the same run.
const (
	// FeatureMirror copies every call (request_mirror_policies, 100 %) to
	// the cluster "mirror": a second server of the same protocol, whose
	// answers are discarded.
	FeatureMirror = "mirror"
	// FeatureRingHash balances over the two servers with lb_policy
	// RING_HASH and the route's hash_policy [method].
	FeatureRingHash = "ringhash"
	// FeatureHealth puts upstream health on the cluster: circuit breakers
	// (limits the load never reaches), outlier detection and an active
	// health check every second (the codec probe for Dubbo, TCP for
	// Thrift).
	FeatureHealth = "health"
	// FeatureLocalRateLimit runs Aeraki's local rate limit before the
	// router: a condition on another method, and a default bucket the
	// load never empties.
	FeatureLocalRateLimit = "lrl"
	// FeatureRBAC runs the RBAC filter before the router: five ALLOW
	// policies on method, interface and source CIDR, the last of which
	// lets the benchmark's calls in.
	FeatureRBAC = "rbac"
	// FeatureObserve turns observability on: istio_stats (Istio's standard
	// metrics), an access log file in Istio's default format, and tracing
	// of every call (100 % sampling) to an OTLP receiver.
	FeatureObserve = "observe"
)

// Proxies lists every proxy kind in table order: the baselines (MOSN,
// the other Go L7 proxy, among them), each metaproxy host, and after each
// host its feature rows.
var Proxies = []string{Direct, HAProxy, MOSN,
	Metaproxy, Metaproxy + "+" + FeatureMirror, Metaproxy + "+" + FeatureRingHash, Metaproxy + "+" + FeatureHealth, Metaproxy + "+" + FeatureLocalRateLimit, Metaproxy + "+" + FeatureRBAC, Metaproxy + "+" + FeatureObserve,
	ABIHost, ABIHost + "+" + FeatureMirror, ABIHost + "+" + FeatureRingHash, ABIHost + "+" + FeatureHealth, ABIHost + "+" + FeatureLocalRateLimit,
	ABIHost + "+" + FeatureRBAC, ABIHost + "+" + FeatureObserve}

// DefaultProxies is the default plan's: every kind but the plugin's
// feature rows, which cost as much run time again and measure the same
// engine code.
var DefaultProxies = []string{Direct, HAProxy,
	Metaproxy, Metaproxy + "+" + FeatureMirror, Metaproxy + "+" + FeatureRingHash, Metaproxy + "+" + FeatureHealth,
	Metaproxy + "+" + FeatureLocalRateLimit, Metaproxy + "+" + FeatureRBAC, Metaproxy + "+" + FeatureObserve, ABIHost}

// SplitKind splits a proxy kind into its host (Direct, HAProxy, Metaproxy
// or ABIHost) and its feature ("" for a plain row).
func SplitKind(kind string) (host, feature string) {
	host, feature, _ = strings.Cut(kind, "+")
	return host, feature
}

// HasFeature reports whether a kind is a feature row.
func HasFeature(kind string) bool {
	_, f := SplitKind(kind)
	return f != ""
}

// NeedsSecondServer reports whether a kind routes to the second server.
func NeedsSecondServer(kind string) bool {
	_, f := SplitKind(kind)
	return f == FeatureMirror || f == FeatureRingHash
}

// Protocols are the protocols the benchmark knows, by loadgen name.
var Protocols = map[string]string{
	"dubbo":  "dubbo-go v3.3.1 (Dubbo 2, hessian2)",
	"thrift": "Apache Thrift 0.17 (framed, binary)",
}

// Server is a running upstream server.
type Server struct {
	Addr   string
	PID    int
	exited <-chan struct{}
}

// Alive reports whether the server process is still running.
func (s Server) Alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Upstreams are the servers of a protocol: Main serves every case;
// Second, started only for plans with feature rows, is the mirror cluster
// of the mirror rows and the second endpoint of the ring-hash rows.
// Collector, for the observe rows, is an OTLP receiver's address, and
// AccessLog the file their access log goes to.
type Upstreams struct {
	Main, Second         Server
	Collector, AccessLog string
}

// PIDs returns the pids of the servers that run; their CPU is the
// server's in the tables.
func (u Upstreams) PIDs() []int {
	pids := []int{u.Main.PID}
	if u.Second.PID != 0 {
		pids = append(pids, u.Second.PID)
	}
	return pids
}

// StartServer starts the real server of protocol on a free port of
// 127.0.0.1 until the test ends: a dubbo-go provider, or an Apache Thrift
// server (framed transport, binary protocol). tag names it in its replies.
func StartServer(t testing.TB, protocol, tag string) Server {
	t.Helper()
	var (
		port int
		p    *harness.Process
	)
	switch protocol {
	case "dubbo":
		d := harness.StartDubboProvider(t, tag)
		port, p = d.Port, d.Process
	case "thrift":
		port = harness.FreePort(t)
		bin := harness.Build(t, harness.Module+"/test/peers/thrift/thriftpeer")
		p = harness.Start(t, "thrift server "+tag, bin, "-mode", "server", "-addr", harness.Addr(port),
			"-tag", tag, "-transport", "framed", "-protocol", "binary")
	default:
		t.Fatalf("unknown protocol %q", protocol)
	}
	return Server{Addr: harness.Addr(port), PID: pidOn(t, port), exited: p.Exited()}
}

// Front is the address clients connect to: a proxy, or the server itself.
type Front struct {
	Addr string
	PID  int // the proxy process; 0 for a direct case
	// Stat, if set, returns a counter of the proxy's listener by its name
	// in metaproxy's admin /stats ("request", "request_mirror", ...).
	Stat func(name string) (int64, error)
	// Counters, if set, returns the ABI host's stats counters (its cgo
	// crossings among them; see Crossings).
	Counters func() (map[string]int64, error)
}

// Proxy settings shared by every proxy kind.
type ProxyOptions struct {
	// Threads is HAProxy's nbthread and the ABI host's worker count
	// (Envoy's --concurrency); the standalone metaproxy uses GOMAXPROCS,
	// which defaults to the number of CPUs.
	Threads int
	// ABIHost is the built host and plugin; nil if they did not build.
	ABIHost *abihost.Artifacts
}

// StartFront starts the proxy of kind in front of up until the test ends.
// A proxy that cannot run here (not installed, not built) gives a reason
// to skip instead.
func StartFront(t testing.TB, kind, protocol string, up Upstreams, o ProxyOptions) (f Front, skip string) {
	t.Helper()
	host, feature := SplitKind(kind)
	if NeedsSecondServer(kind) && up.Second.Addr == "" {
		t.Fatalf("%s: no second server", kind)
	}
	switch host {
	case Direct:
		return Front{Addr: up.Main.Addr}, ""
	case HAProxy:
		if _, err := exec.LookPath("haproxy"); err != nil {
			return f, "haproxy is not installed (apt-get install haproxy)"
		}
		return startHAProxy(t, up.Main.Addr, o.Threads), ""
	case MOSN:
		return startMOSN(t, protocol, up)
	case Metaproxy:
		admin := harness.FreePort(t)
		b := bootstrap(protocol, feature, up, harness.FreePort(t))
		b.AdminPort = admin
		addr := harness.Standalone{}.Start(t, b.MustRender())
		return Front{Addr: addr, PID: pidOf(t, addr), Stat: func(name string) (int64, error) { return adminStat(admin, name) }}, ""
	case ABIHost:
		if o.ABIHost == nil {
			return f, "the ABI host or metaprotocol.so did not build"
		}
		b := bootstrap(protocol, feature, up, harness.FreePort(t))
		h := abihost.StartBootstrap(t, o.ABIHost, []byte(b.MustRender()),
			abihost.Options{Workers: o.Threads, LogLevel: "warning"}, abihost.StartOptions{})
		return Front{Addr: h.FirstAddr(), PID: h.PID(), Counters: h.Stats}, ""
	}
	t.Fatalf("unknown proxy %q", kind)
	return f, ""
}

// bootstrap is the Envoy bootstrap of a metaproxy listener on port that
// routes every call of the benchmark's service to the cluster "upstream"
// (up.Main): Dubbo calls by interface, Thrift calls by method, so that each
// request is decoded and matched, as in a mesh. feature adds to that:
//
//   - FeatureMirror: the route's request_mirror_policies copies every call
//     (no runtime_fraction: 100 %) to the cluster "mirror" (up.Second).
//   - FeatureRingHash: "upstream" holds both servers with lb_policy
//     RING_HASH, and the route hashes on hash_policy [method]. The load
//     generator calls one method, so every call hashes to the same server:
//     the row measures the hashing and the ring lookup, not a spread.
//   - FeatureHealth: "upstream" has circuit_breakers, outlier_detection and
//     health_checks every second, none of which trips under the load.
//   - FeatureLocalRateLimit: the local rate limit filter, whose condition
//     (another method) is checked and whose default bucket is never empty.
//   - FeatureRBAC: the RBAC filter with benchRBAC's five policies.
//   - FeatureObserve: istio_stats, an access log to up.AccessLog in Istio's
//     default format, and tracing at 100 % to the OTLP receiver up.Collector.
func bootstrap(protocol, feature string, up Upstreams, port int) harness.Bootstrap {
	match := harness.Exact("method", "sayHello")
	if protocol == "dubbo" {
		match = harness.Exact("interface", harness.DubboInterface)
	}
	route := harness.Route{Name: "bench", Match: []harness.Match{match}, Cluster: "upstream"}
	clusters := []harness.Cluster{{Name: "upstream", Endpoints: []string{up.Main.Addr}}}
	var filters []harness.Filter
	var extra map[string]any
	switch feature {
	case "":
	case FeatureMirror:
		route.Extra = map[string]any{"request_mirror_policies": []any{map[string]any{"cluster": "mirror"}}}
		clusters = append(clusters, harness.Cluster{Name: "mirror", Endpoints: []string{up.Second.Addr}})
	case FeatureRingHash:
		route.Extra = map[string]any{"hash_policy": []string{"method"}}
		clusters[0].Endpoints = append(clusters[0].Endpoints, up.Second.Addr)
		clusters[0].LBPolicy = "RING_HASH"
	case FeatureHealth:
		checker := map[string]any{"tcp_health_check": map[string]any{}}
		if protocol == "dubbo" {
			checker = map[string]any{"custom_health_check": map[string]any{"name": "metaproxy.health_checkers.codec"}}
		}
		hc := map[string]any{"timeout": "1s", "interval": "1s", "unhealthy_threshold": 3, "healthy_threshold": 1}
		for k, v := range checker {
			hc[k] = v
		}
		clusters[0].Extra = map[string]any{
			"circuit_breakers": map[string]any{"thresholds": []any{map[string]any{
				"max_connections": 10000, "max_pending_requests": 10000, "max_requests": 10000, "max_retries": 10}}},
			"outlier_detection": map[string]any{"consecutive_5xx": 5, "interval": "1s", "base_ejection_time": "30s", "max_ejection_percent": 100},
			"health_checks":     []any{hc},
		}
	case FeatureLocalRateLimit:
		bucket := map[string]any{"max_tokens": 4000000000, "tokens_per_fill": 4000000000, "fill_interval": "1s"}
		filters = []harness.Filter{{Name: "aeraki.meta_protocol.filters.local_ratelimit", Config: map[string]any{
			"@type":       "type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit",
			"stat_prefix": "bench", "token_bucket": bucket,
			"conditions": []any{map[string]any{"match": map[string]any{"metadata": []any{map[string]any{"name": "method", "exact_match": "other"}}},
				"token_bucket": map[string]any{"max_tokens": 1, "fill_interval": "1s"}}},
		}}, {Name: "aeraki.meta_protocol.filters.router"}}
	case FeatureObserve:
		filters = []harness.Filter{{Name: "aeraki.meta_protocol.filters.istio_stats", Config: map[string]any{
			"@type": "type.googleapis.com/aeraki.meta_protocol_proxy.filters.istio_stats.v1alpha.IstioStats", "destination_service": "bench.default.svc.cluster.local"}},
			{Name: "aeraki.meta_protocol.filters.router"}}
		extra = map[string]any{
			"access_log": []any{map[string]any{"name": "envoy.access_loggers.file", "typed_config": map[string]any{
				"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", "path": up.AccessLog}}},
			"tracing": map[string]any{"random_sampling": map[string]any{"value": 100}, "provider": map[string]any{
				"name": "envoy.tracers.opentelemetry", "typed_config": map[string]any{
					"@type":        "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
					"grpc_service": map[string]any{"envoy_grpc": map[string]any{"cluster_name": "otel"}}, "service_name": "bench"}}},
		}
		clusters = append(clusters, harness.Cluster{Name: "otel", Endpoints: []string{up.Collector}})
	case FeatureRBAC:
		filters = []harness.Filter{{Name: "metaproxy.filters.rbac", Config: benchRBAC(match.Name, match.Exact)},
			{Name: "aeraki.meta_protocol.filters.router"}}
	default:
		panic("unknown feature " + feature)
	}
	return harness.Bootstrap{
		Listeners: []harness.Listener{{Name: "bench", Port: port, Proxy: harness.MetaProtocolProxy{
			StatPrefix:   "bench",
			Protocol:     protocol,
			Multiplexing: true,
			Routes:       []harness.Route{route},
			Filters:      filters,
			Extra:        extra,
		}}},
		Clusters: clusters,
	}
}

// benchRBAC is an RBAC config of five ALLOW policies; only the last, on
// metadata key = value from 127.0.0.0/8, matches the benchmark's calls.
func benchRBAC(key, value string) map[string]any {
	exact := func(k, v string) map[string]any {
		return map[string]any{"header": map[string]any{"name": k, "string_match": map[string]any{"exact": v}}}
	}
	cidr := func(prefix string, n int) map[string]any {
		return map[string]any{"direct_remote_ip": map[string]any{"address_prefix": prefix, "prefix_len": n}}
	}
	policy := func(perm, principal map[string]any) map[string]any {
		return map[string]any{"permissions": []any{perm}, "principals": []any{principal}}
	}
	return map[string]any{"@type": "type.googleapis.com/metaproxy.filters.rbac.v1.RBAC", "stat_prefix": "bench.",
		"rules": map[string]any{"action": "ALLOW", "policies": map[string]any{
			"a-admin":   policy(exact("method", "admin"), cidr("10.0.0.0", 8)),
			"b-reports": policy(exact("interface", "com.example.Reports"), map[string]any{"any": true}),
			"c-ops":     policy(map[string]any{"or_rules": map[string]any{"rules": []any{exact("method", "drain"), exact("method", "dump")}}}, cidr("192.168.0.0", 16)),
			"d-not":     policy(map[string]any{"not_rule": exact(key, value)}, cidr("172.16.0.0", 12)),
			"e-bench":   policy(exact(key, value), cidr("127.0.0.0", 8)),
		}}}
}

// haproxyConfig is HAProxy's configuration for a plain TCP relay: one
// process with threads threads, no logging, no health checks.
func haproxyConfig(listen, upstream string, threads int) string {
	return fmt.Sprintf(`global
    nbthread %d
    maxconn 4000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 1m

listen bench
    bind %s
    server upstream %s
`, threads, listen, upstream)
}

func startHAProxy(t testing.TB, upstream string, threads int) Front {
	t.Helper()
	addr := harness.Addr(harness.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(addr, upstream, threads)), 0o644); err != nil {
		t.Fatal(err)
	}
	// -db: stay in the foreground, one process (no master-worker).
	harness.StartListening(t, "haproxy", addr, "haproxy", "-db", "-f", cfg)
	return Front{Addr: addr, PID: pidOf(t, addr)}
}

// adminStat reads the counter name of the listener "bench" from
// metaproxy's admin /stats.
func adminStat(port int, name string) (int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://%s/stats", harness.Addr(port)))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if ok && strings.HasSuffix(k, ".bench."+name) {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("admin /stats has no counter %q", name)
}

func pidOf(t testing.TB, addr string) int {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return pidOn(t, p)
}

func pidOn(t testing.TB, port int) int {
	t.Helper()
	pid, err := abihost.PIDListening(port)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
