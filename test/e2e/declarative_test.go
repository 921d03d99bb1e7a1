package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/test/harness"
)

// The declarative codec (metaproxy.codec.declarative) end to end: the
// example descriptions of codecs/declarative/examples as codec configs,
// through both hosts, against real peers.

// declarativeExample returns codecs/declarative/examples/<name> as the
// JSON object a codec config carries.
func declarativeExample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "codecs", "declarative", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var desc map[string]any
	if err := json.Unmarshal(js, &desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

// declarativeProtocol is a MetaProtocolProxy protocol section whose codec
// is the declarative one configured with desc, as a TypedStruct (as
// Aeraki carries codec configs).
func declarativeProtocol(name string, mux bool, desc map[string]any) map[string]any {
	return map[string]any{"protocol": map[string]any{
		"name":         name,
		"multiplexing": mux,
		"codec": map[string]any{
			"name": "metaproxy.codec.declarative",
			"config": map[string]any{
				"@type":    "type.googleapis.com/udpa.type.v1.TypedStruct",
				"type_url": "type.googleapis.com/metaproxy.codecs.declarative.Description",
				"value":    desc,
			},
		},
	}}
}

// TestDeclarativeTRPC runs the tRPC cases of TestTRPCProxy (real trpc-go
// clients and servers: calls, routing by func and trans_info, request
// mutations, business errors, ret 11 for an unrouted func, oneway calls)
// with the tRPC described by examples/trpc.yaml instead of the native
// codec, through every proxy implementation.
func TestDeclarativeTRPC(t *testing.T) {
	desc := declarativeExample(t, "trpc.yaml")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			s1 := harness.StartTRPCServer(t, "s1")
			s2 := harness.StartTRPCServer(t, "s2")
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					bs := harness.Bootstrap{
						Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
							StatPrefix: "trpc_declarative", Protocol: "trpc", Multiplexing: mux, Routes: trpcRoutes(),
							Extra: declarativeProtocol("trpc", mux, desc),
						}}},
						Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{s1.Addr()}}, {Name: "c2", Endpoints: []string{s2.Addr()}}},
					}
					testTRPCRouted(t, px.Start(t, bs.MustRender()), s1, s2)
				})
			}
		})
	}
}

// kvPeer is the KVP1 peer (codecs/declarative/internal/kvpeer), built as a
// command: the test module cannot import another module's internal
// package.
const kvPeer = harness.Module + "/codecs/declarative/internal/kvpeer/cmd/kvpeer"

// kvResult is what the peer's client prints.
type kvResult struct {
	OK, Errors int
	Calls      []struct {
		Flags  byte
		Status uint16
		Pairs  map[string]string
		Error  string
	}
}

// startKVServer starts a KVP1 server tagged tag and returns its address.
func startKVServer(t *testing.T, tag string) string {
	t.Helper()
	addr := harness.Addr(harness.FreePort(t))
	harness.Start(t, "kvpeer server "+tag, harness.Build(t, kvPeer), "-mode", "server", "-tag", tag, "-listen", addr)
	return addr
}

// kvCalls runs the peer's client against addr.
func kvCalls(t *testing.T, addr string, args ...string) kvResult {
	t.Helper()
	args = append([]string{"-mode", "client", "-addr", addr}, args...)
	out, stderr, err := harness.Run(t, 2*time.Minute, harness.Build(t, kvPeer), args...)
	if err != nil {
		t.Fatalf("kvpeer client %v: %v\n%s\n%s", args, err, out, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "RESULT "); ok {
			var r kvResult
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("kvpeer client %v printed no RESULT:\n%s\n%s", args, out, stderr)
	return kvResult{}
}

// TestDeclarativeKV runs KVP1, a private protocol known only by its
// description (examples/kv.yaml), through every proxy implementation:
// calls routed by the body's route pair to two servers, ids rewritten on
// multiplexed upstream connections, request mutations written as pairs,
// heartbeats, oneway calls, and the description's error reply for an
// unrouted call.
func TestDeclarativeKV(t *testing.T) {
	desc := declarativeExample(t, "kv.yaml")
	s1, s2 := startKVServer(t, "s1"), startKVServer(t, "s2")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					bs := harness.Bootstrap{
						Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
							StatPrefix: "kv_declarative", Protocol: "kvp1", Multiplexing: mux,
							Routes: []harness.Route{
								{Name: "echo", Match: []harness.Match{harness.Exact("route", "a"), harness.Exact("op", "echo")},
									Cluster: "c1", RequestMutation: []harness.KV{{Key: "x-mutated", Value: "by-proxy"}}},
								{Name: "a", Match: []harness.Match{harness.Exact("route", "a")}, Cluster: "c1"},
								{Name: "b", Match: []harness.Match{harness.Exact("route", "b")}, Cluster: "c2"},
							},
							Extra: declarativeProtocol("kvp1", mux, desc),
						}}},
						Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{s1}}, {Name: "c2", Endpoints: []string{s2}}},
					}
					testKVRouted(t, px.Start(t, bs.MustRender()))
				})
			}
		})
	}
}

func testKVRouted(t *testing.T, addr string) {
	ok := func(t *testing.T, args ...string) kvResult {
		t.Helper()
		r := kvCalls(t, addr, args...)
		if r.Errors != 0 {
			t.Fatalf("%v: %d of %d calls failed: %+v", args, r.Errors, len(r.Calls), r.Calls)
		}
		return r
	}
	t.Run("routed by a body pair", func(t *testing.T) {
		for route, tag := range map[string]string{"a": "s1", "b": "s2"} {
			// 30 callers share the client's connection; with multiplexing
			// they share upstream connections too, ids rewritten.
			r := ok(t, "-n", "300", "-c", "30", "-pairs", "route="+route+",name=n{i}")
			for i, c := range r.Calls {
				if want := fmt.Sprintf("Hello n%d from %s", i, tag); c.Pairs["reply"] != want || c.Pairs["served-by"] != tag {
					t.Fatalf("route %s call %d: %+v, want %q", route, i, c, want)
				}
			}
		}
	})
	t.Run("request mutation", func(t *testing.T) {
		r := ok(t, "-pairs", "route=a,op=echo,x-mutated=by-client,x-keep=kept")
		if p := r.Calls[0].Pairs; p["x-mutated"] != "by-proxy" || p["x-keep"] != "kept" || p["served-by"] != "s1" {
			t.Errorf("the server saw %v", p)
		}
	})
	t.Run("application error", func(t *testing.T) {
		r := kvCalls(t, addr, "-pairs", "route=b,op=fail,name=boom")
		if c := r.Calls[0]; c.Status != 1 || c.Pairs["error"] != "failed: boom" {
			t.Errorf("fail: %+v", c)
		}
	})
	t.Run("unrouted call gets the described error reply", func(t *testing.T) {
		r := kvCalls(t, addr, "-n", "3", "-pairs", "route=nowhere,name=x")
		for i, c := range r.Calls {
			// kv.yaml: route_not_found → status 2, the text as pair "error".
			if c.Error != "" || c.Flags != 0x02 || c.Status != 2 || !strings.Contains(c.Pairs["error"], "route_not_found") {
				t.Errorf("call %d: %+v, want status 2 with a route_not_found error pair", i, c)
			}
		}
		ok(t, "-pairs", "route=a,name=after")
	})
	t.Run("heartbeat", func(t *testing.T) {
		r := ok(t, "-heartbeat", "-n", "3")
		for i, c := range r.Calls {
			if c.Flags != 0x0a {
				t.Errorf("heartbeat %d: %+v, want flags heartbeat|response", i, c)
			}
		}
	})
	t.Run("oneway", func(t *testing.T) {
		count := func() int {
			n, _ := strconv.Atoi(ok(t, "-pairs", "route=b,op=count").Calls[0].Pairs["oneways"])
			return n
		}
		before := count()
		ok(t, "-oneway", "-n", "3", "-pairs", "route=b,op=log")
		if !harness.WaitFor(t, 30*time.Second, func() bool { return count() >= before+3 }) {
			t.Fatalf("s2 received %d oneway calls, want %d", count()-before, 3)
		}
	})
}
