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

// Proxies lists every proxy kind in table order.
var Proxies = []string{Direct, HAProxy, Metaproxy, ABIHost}

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

// StartServer starts the real server of protocol on a free port of
// 127.0.0.1 until the test ends: a dubbo-go provider, or an Apache Thrift
// server (framed transport, binary protocol).
func StartServer(t testing.TB, protocol string) Server {
	t.Helper()
	var (
		port int
		p    *harness.Process
	)
	switch protocol {
	case "dubbo":
		d := harness.StartDubboProvider(t, "bench")
		port, p = d.Port, d.Process
	case "thrift":
		port = harness.FreePort(t)
		bin := harness.Build(t, harness.Module+"/test/peers/thrift/thriftpeer")
		p = harness.Start(t, "thrift server", bin, "-mode", "server", "-addr", harness.Addr(port),
			"-tag", "bench", "-transport", "framed", "-protocol", "binary")
	default:
		t.Fatalf("unknown protocol %q", protocol)
	}
	return Server{Addr: harness.Addr(port), PID: pidOn(t, port), exited: p.Exited()}
}

// Front is the address clients connect to: a proxy, or the server itself.
type Front struct {
	Addr string
	PID  int // the proxy process; 0 for a direct case
	// Requests, if set, returns the number of requests the proxy handled.
	Requests func() (int64, error)
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

// StartFront starts the proxy of kind in front of upstream until the test
// ends. A proxy that cannot run here (not installed, not built) gives a
// reason to skip instead.
func StartFront(t testing.TB, kind, protocol, upstream string, o ProxyOptions) (f Front, skip string) {
	t.Helper()
	switch kind {
	case Direct:
		return Front{Addr: upstream}, ""
	case HAProxy:
		if _, err := exec.LookPath("haproxy"); err != nil {
			return f, "haproxy is not installed (apt-get install haproxy)"
		}
		return startHAProxy(t, upstream, o.Threads), ""
	case Metaproxy:
		admin := harness.FreePort(t)
		b := bootstrap(protocol, upstream, harness.FreePort(t))
		b.AdminPort = admin
		addr := harness.Standalone{}.Start(t, b.MustRender())
		return Front{Addr: addr, PID: pidOf(t, addr), Requests: func() (int64, error) { return adminRequests(admin) }}, ""
	case ABIHost:
		if o.ABIHost == nil {
			return f, "the ABI host or metaprotocol.so did not build"
		}
		b := bootstrap(protocol, upstream, harness.FreePort(t))
		h := abihost.StartBootstrap(t, o.ABIHost, []byte(b.MustRender()),
			abihost.Options{Workers: o.Threads, LogLevel: "warning"}, abihost.StartOptions{})
		return Front{Addr: h.FirstAddr(), PID: h.PID()}, ""
	}
	t.Fatalf("unknown proxy %q", kind)
	return f, ""
}

// bootstrap is the Envoy bootstrap of a metaproxy listener on port that
// routes every call of the benchmark's service to upstream: Dubbo calls by
// interface, Thrift calls by method, so that each request is decoded and
// matched, as in a mesh.
func bootstrap(protocol, upstream string, port int) harness.Bootstrap {
	match := harness.Exact("method", "sayHello")
	if protocol == "dubbo" {
		match = harness.Exact("interface", harness.DubboInterface)
	}
	return harness.Bootstrap{
		Listeners: []harness.Listener{{Name: "bench", Port: port, Proxy: harness.MetaProtocolProxy{
			StatPrefix:   "bench",
			Protocol:     protocol,
			Multiplexing: true,
			Routes:       []harness.Route{{Name: "bench", Match: []harness.Match{match}, Cluster: "upstream"}},
		}}},
		Clusters: []harness.Cluster{{Name: "upstream", Endpoints: []string{upstream}}},
	}
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

// adminRequests reads the request counter from metaproxy's admin /stats.
func adminRequests(port int) (int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://%s/stats", harness.Addr(port)))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ": ")
		if ok && strings.HasSuffix(name, ".bench.request") {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("admin /stats has no request counter")
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
