package e2e

// Tests specific to metaprotocol.so in the ABI host (harness.ABIHost, the
// harness.Proxy that runs the shared Dubbo and Thrift suites against it):
// the shipped Envoy and Istio configs with real peers, the settings Envoy
// deployments need, panics, connect failures and the release of Envoy's
// objects.

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/abihost"
	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
)

// abitest is the plugin with the test-only codec and filter (plugin/abitest.go).
var abitest = harness.ABIHost{Tags: []string{"abitest"}}

func shippedConfig(t *testing.T, name string) []byte {
	t.Helper()
	b, err := abihost.ShippedConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func localize(t *testing.T, bootstrap []byte, endpoints map[string][]string) string {
	t.Helper()
	b, err := abihost.Localize(bootstrap, endpoints)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestABIHostShippedDubbo runs envoy-configs/dubbo.yaml with dubbo-go peers,
// once the way Envoy deployments that set GODEBUG run, and once without it,
// the way Istio runs Envoy: the plugin must carry cgocheck=0 itself, or the
// SDK's first upstream dial panics.
func TestABIHostShippedDubbo(t *testing.T) {
	p := harness.StartDubboProvider(t, "shipped")
	bootstrap := localize(t, shippedConfig(t, "dubbo.yaml"), map[string][]string{"dubbo-provider": {p.Addr()}})
	for _, keepEnv := range []bool{false, true} {
		name := "godebug"
		if keepEnv {
			name = "istio-env"
		}
		t.Run(name, func(t *testing.T) {
			addr := harness.ABIHost{KeepEnv: keepEnv}.Start(t, bootstrap)
			// A raw call first: without cgocheck=0 the first dial fails
			// and the connection closes, which dubbo-go would retry.
			if r := call(t, dialRaw(t, addr), sayHello("raw")); r.String() != p.HelloFrom("raw") {
				t.Fatalf("got %q, want %q", r.String(), p.HelloFrom("raw"))
			}
			out, err := harness.DubboConsumer(t, addr, "-name", "ann", "-n", "3")
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Repeat(p.HelloFrom("ann")+"\n", 3); out != want {
				t.Errorf("got %q, want %q", out, want)
			}
			concurrentHellos(t, dialRaw(t, addr), 50, "shipped", func(n string) []string { return []string{p.HelloFrom(n)} })
		})
	}
}

// TestABIHostShippedThrift runs envoy-configs/thrift.yaml with an Apache
// Thrift server and client.
func TestABIHostShippedThrift(t *testing.T) {
	cfg := thriftpeer.Config{Transport: "framed", Protocol: "binary"}
	srv, err := thriftpeer.Serve("127.0.0.1:0", "shipped", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr := harness.ABIHost{}.Start(t, localize(t, shippedConfig(t, "thrift.yaml"), map[string][]string{"thrift-server": {srv.Addr}}))
	cl, err := thriftpeer.Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	got, err := cl.SayHello(thriftCtx(t), "tom")
	if err != nil {
		t.Fatal(err)
	}
	if want := thriftpeer.Reply("tom", "shipped", srv.Addr); got != want {
		t.Errorf("sayHello: %q, want %q", got, want)
	}
}

// TestABIHostIstio runs the shipped Istio EnvoyFilters: a consumer's call
// goes through the outbound filter, then the inbound filter, then reaches
// the provider, as between two sidecars.
func TestABIHostIstio(t *testing.T) {
	p := harness.StartDubboProvider(t, "istio")
	var docs [][]byte
	for _, n := range []string{"plaintext-cluster.yaml", "dubbo-inbound.yaml"} {
		docs = append(docs, shippedConfig(t, filepath.Join("istio", n)))
	}
	inboundBootstrap, err := abihost.EnvoyFilterBootstrap(docs...)
	if err != nil {
		t.Fatal(err)
	}
	inbound := harness.ABIHost{}.Start(t, localize(t, inboundBootstrap, map[string][]string{"local-app": {p.Addr()}}))

	docs[1] = shippedConfig(t, filepath.Join("istio", "dubbo-outbound.yaml"))
	outboundBootstrap, err := abihost.EnvoyFilterBootstrap(docs...)
	if err != nil {
		t.Fatal(err)
	}
	outbound := harness.ABIHost{}.Start(t, localize(t, outboundBootstrap, map[string][]string{"dubbo-provider": {inbound}}))

	out, err := harness.DubboConsumer(t, outbound, "-name", "ida")
	if err != nil {
		t.Fatal(err)
	}
	if want := p.HelloFrom("ida") + "\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// panicBootstrap routes DemoService to p through the test-only panicking
// codec and filter.
func panicBootstrap(t *testing.T, p *harness.DubboProvider) string {
	return harness.Bootstrap{
		Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
			Protocol:     "dubbo",
			Codec:        "abitest.panicky_dubbo",
			Multiplexing: true,
			Filters:      []harness.Filter{{Name: "abitest.panic"}, {Name: "aeraki.meta_protocol.filters.router"}},
			Routes:       []harness.Route{{Name: "demo", Cluster: "provider", Match: []harness.Match{harness.Exact("interface", harness.DubboInterface)}}},
		}}},
		Clusters: []harness.Cluster{{Name: "provider", Endpoints: []string{p.Addr()}}},
	}.MustRender()
}

// TestABIHostPanics makes a filter and a codec panic inside the plugin: the
// host process and the other connections must carry on.
func TestABIHostPanics(t *testing.T) {
	p := harness.StartDubboProvider(t, "panics")
	h := abitest.StartHost(t, panicBootstrap(t, p))
	addr := h.FirstAddr()
	bystander := dialRaw(t, addr)
	want := func(n string) []string { return []string{p.HelloFrom(n)} }
	concurrentHellos(t, bystander, 20, "before", want)

	t.Run("filter", func(t *testing.T) {
		c := dialRaw(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := c.Call(ctx, rawdubbo.Call{Interface: harness.DubboInterface, Method: "panicNow", Args: []any{"x"}})
		if err == nil && r.OK() {
			t.Errorf("the panicking call succeeded: %q", r.String())
		}
	})
	t.Run("codec", func(t *testing.T) {
		c := dialRaw(t, addr)
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := c.Call(ctx, sayHello("codecPanic"))
		if err == nil && r.OK() {
			t.Errorf("the panicking call succeeded: %q", r.String())
		}
	})

	concurrentHellos(t, bystander, 20, "after", want)
	concurrentHellos(t, dialRaw(t, addr), 20, "new", want)
	harness.WaitFor(t, 10*time.Second, func() bool { return strings.Count(h.Log(), "panic contained") >= 2 })
	if n := strings.Count(h.Log(), "panic contained"); n < 2 {
		t.Errorf("%d panics logged, want 2:\n%s", n, h.Log())
	}
	if _, err := h.Stats(); err != nil {
		t.Fatalf("the host is gone: %v", err)
	}
}

// TestABIHostConnectFailure routes to a port nobody listens on: Envoy's
// connect failure must reach the client as a Dubbo error, and the host must
// count it.
func TestABIHostConnectFailure(t *testing.T) {
	dead := harness.Addr(harness.FreePort(t))
	bootstrap := harness.Bootstrap{
		Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
			Protocol: "dubbo", Multiplexing: true,
			Routes: []harness.Route{{Name: "demo", Cluster: "dead", Match: []harness.Match{harness.Exact("interface", harness.DubboInterface)}}},
		}}},
		Clusters: []harness.Cluster{{Name: "dead", Endpoints: []string{dead}}},
	}.MustRender()
	h := harness.ABIHost{}.StartHost(t, bootstrap)
	r := call(t, dialRaw(t, h.FirstAddr()), sayHello("nobody"))
	if r.OK() {
		t.Fatalf("a call to a dead upstream succeeded: %q", r.String())
	}
	st, err := h.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st["upstream_failures"] == 0 {
		t.Errorf("no connect failure reached the host: %v", st)
	}
}

// TestABIHostLargeFrames sends a request and gets a response far larger
// than Envoy's 16 KiB slices and read bursts.
func TestABIHostLargeFrames(t *testing.T) {
	p := harness.StartDubboProvider(t, "large")
	addr := harness.ABIHost{}.Start(t, panicFreeBootstrap(t, p))
	name := strings.Repeat("0123456789abcdef", 56000) // 896 KB: dubbo-go takes up to 1024000
	r := call(t, dialRaw(t, addr), sayHello(name))
	if r.String() != p.HelloFrom(name) {
		t.Errorf("got %d bytes back, want %d", len(r.String()), len(p.HelloFrom(name)))
	}
}

func panicFreeBootstrap(t *testing.T, p *harness.DubboProvider) string {
	return harness.Bootstrap{
		Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
			Protocol: "dubbo", Multiplexing: true,
			Routes: []harness.Route{{Name: "demo", Cluster: "provider", Match: []harness.Match{harness.Exact("interface", harness.DubboInterface)}}},
		}}},
		Clusters: []harness.Cluster{{Name: "provider", Endpoints: []string{p.Addr()}}},
	}.MustRender()
}

// TestABIHostReleasesEnvoyObjects checks that the plugin drops every
// reference to a closed connection: the SDK's finalizers then release
// Envoy's side, which the host counts. The test-only build runs the garbage
// collector often so that finalizers run during the test.
func TestABIHostReleasesEnvoyObjects(t *testing.T) {
	p := harness.StartDubboProvider(t, "release")
	px := harness.ABIHost{Tags: abitest.Tags, Env: []string{"METAPROTOCOL_TEST_GC=20ms"}}
	h := px.StartHost(t, panicFreeBootstrap(t, p))
	const conns = 40
	for i := range conns {
		c, err := rawdubbo.Dial(h.FirstAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		if _, err := c.Call(ctx, sayHello("r")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		cancel()
		c.Close()
	}
	stats := func() map[string]int64 {
		st, err := h.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	waitStats(t, stats, "the downstream wrappers to be finalized", func(st map[string]int64) bool {
		return st["downstream_open"] == 0 && st["downstream_wrappers"] == 0
	})
	if st := stats(); st["downstream_total"] != conns {
		t.Errorf("the host saw %d connections, want %d", st["downstream_total"], conns)
	}
	// The engine keeps its upstream connections; once the provider goes,
	// they close and their wrappers must go too.
	p.Kill()
	waitStats(t, stats, "the upstream wrappers to be finalized", func(st map[string]int64) bool {
		return st["upstream_open"] == 0 && st["upstream_wrappers"] == 0
	})
}

// waitStats polls the host's counters until cond holds. The bound only
// turns a leak into a failure instead of a hang.
func waitStats(t *testing.T, stats func() map[string]int64, what string, cond func(map[string]int64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := stats()
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s: %v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
