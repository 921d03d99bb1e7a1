package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/test/harness"
)

// trpcRoutes route the Greeter's calls by func to two servers: SayHello
// to c1 (to c2 with the trans_info x-route: s2), SayHi to c2, EchoMeta
// (with a request mutation) and Fail to c1. Any other func has no route.
func trpcRoutes() []harness.Route {
	fn := func(m string) harness.Match { return harness.Exact("func", harness.TRPCFunc(m)) }
	return []harness.Route{
		{Name: "by-trans-info", Match: []harness.Match{fn("SayHello"), harness.Exact("x-route", "s2")}, Cluster: "c2"},
		{Name: "hello", Match: []harness.Match{fn("SayHello")}, Cluster: "c1"},
		{Name: "hi", Match: []harness.Match{fn("SayHi")}, Cluster: "c2"},
		{Name: "echo", Match: []harness.Match{harness.Exact("interface", harness.TRPCService), harness.Exact("method", "EchoMeta")},
			Cluster: "c1", RequestMutation: []harness.KV{{Key: "x-mutated", Value: "by-proxy"}}},
		{Name: "fail", Match: []harness.Match{fn("Fail")}, Cluster: "c1"},
	}
}

// trpcBootstrap is a tRPC listener on port with routes to clusters c1 and c2.
func trpcBootstrap(port int, multiplexing bool, c1, c2 string) string {
	return harness.Bootstrap{
		Listeners: []harness.Listener{{Port: port, Proxy: harness.MetaProtocolProxy{
			StatPrefix: "trpc_e2e", Protocol: "trpc", Multiplexing: multiplexing, Routes: trpcRoutes(),
		}}},
		Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{c1}}, {Name: "c2", Endpoints: []string{c2}}},
	}.MustRender()
}

// TestTRPCProxy runs real trpc-go clients and servers through every proxy
// implementation, with and without multiplexed upstream connections
// (request ids rewritten or not).
func TestTRPCProxy(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			s1 := harness.StartTRPCServer(t, "s1")
			s2 := harness.StartTRPCServer(t, "s2")
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					addr := px.Start(t, trpcBootstrap(harness.FreePort(t), mux, s1.Addr(), s2.Addr()))
					testTRPCRouted(t, addr, s1, s2)
				})
			}
		})
	}
}

// trpcCall runs the client and fails t unless every call succeeded.
func trpcCall(t *testing.T, addr string, c harness.TRPCCalls) harness.TRPCResult {
	t.Helper()
	r, err := harness.TRPCClient(t, addr, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 {
		t.Fatalf("%+v: %d of %d calls failed: %+v", c, r.Errors, len(r.Calls), r.Calls)
	}
	return r
}

// testTRPCRouted runs the cases that share one proxy in front of s1 and s2.
func testTRPCRouted(t *testing.T, addr string, s1, s2 *harness.TRPCServer) {
	t.Run("unary calls", func(t *testing.T) {
		r := trpcCall(t, addr, harness.TRPCCalls{Name: "alice", N: 20})
		for i, c := range r.Calls {
			if c.Reply != s1.HelloFrom("alice") || c.TransInfo["x-served-by"] != "s1" {
				t.Fatalf("call %d: %+v, want %q and the server's trans_info", i, c, s1.HelloFrom("alice"))
			}
		}
	})

	t.Run("concurrent calls", func(t *testing.T) {
		// 50 callers on the trpc-go client's pooled connections; with
		// multiplexing they share upstream connections, ids rewritten.
		r := trpcCall(t, addr, harness.TRPCCalls{Method: "SayHi", Name: "n{i}", N: 1000, C: 50})
		for i, c := range r.Calls {
			if want := s2.HiFrom(fmt.Sprintf("n%d", i)); c.Reply != want {
				t.Fatalf("call %d: %q, want %q", i, c.Reply, want)
			}
		}
	})

	t.Run("multiplexed client", func(t *testing.T) {
		// trpc-go matches these responses by the head's stream id, which
		// the proxy must give back as the client sent it.
		r := trpcCall(t, addr, harness.TRPCCalls{Name: "m{i}", N: 300, C: 30, Multiplexed: true})
		for i, c := range r.Calls {
			if want := s1.HelloFrom(fmt.Sprintf("m%d", i)); c.Reply != want {
				t.Fatalf("call %d: %q, want %q", i, c.Reply, want)
			}
		}
	})

	t.Run("route by func", func(t *testing.T) {
		r := trpcCall(t, addr, harness.TRPCCalls{Method: "SayHi", Name: "bob", N: 3})
		for _, c := range r.Calls {
			if c.Reply != s2.HiFrom("bob") {
				t.Errorf("SayHi: %q, want s2's %q", c.Reply, s2.HiFrom("bob"))
			}
		}
		r = trpcCall(t, addr, harness.TRPCCalls{Name: "carol"})
		if c := r.Calls[0]; c.Reply != s1.HelloFrom("carol") {
			t.Errorf("SayHello: %q, want s1's %q", c.Reply, s1.HelloFrom("carol"))
		}
	})

	t.Run("route by trans_info", func(t *testing.T) {
		r := trpcCall(t, addr, harness.TRPCCalls{Name: "dan", Meta: map[string]string{"x-route": "s2"}})
		if c := r.Calls[0]; c.Reply != s2.HelloFrom("dan") {
			t.Errorf("x-route=s2: %q, want s2's %q", c.Reply, s2.HelloFrom("dan"))
		}
		r = trpcCall(t, addr, harness.TRPCCalls{Name: "dan", Meta: map[string]string{"x-route": "s3"}})
		if c := r.Calls[0]; c.Reply != s1.HelloFrom("dan") {
			t.Errorf("x-route=s3: %q, want s1's %q", c.Reply, s1.HelloFrom("dan"))
		}
	})

	t.Run("request mutation", func(t *testing.T) {
		meta := map[string]string{"x-keep": "kept", "x-mutated": "by-client"}
		for key, want := range map[string]string{"x-mutated": "by-proxy", "x-keep": "kept"} {
			r := trpcCall(t, addr, harness.TRPCCalls{Method: "EchoMeta", Name: key, Meta: meta})
			if got := r.Calls[0].Reply; got != want {
				t.Errorf("server saw trans_info %s = %q, want %q", key, got, want)
			}
		}
	})

	t.Run("business error", func(t *testing.T) {
		r, err := harness.TRPCClient(t, addr, harness.TRPCCalls{Method: "Fail", Name: "boom"})
		if err != nil {
			t.Fatal(err)
		}
		if c := r.Calls[0]; c.Code != harness.TRPCFailCode || c.Type != "business" || !strings.Contains(c.Error, "boom") {
			t.Errorf("Fail(boom): %+v, want business error %d", c, harness.TRPCFailCode)
		}
	})

	t.Run("unrouted func", func(t *testing.T) {
		r, err := harness.TRPCClient(t, addr, harness.TRPCCalls{Method: "NoSuchFunc", N: 2})
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range r.Calls {
			// 11 is TRPC_SERVER_NOSERVICE_ERR, what codecs/trpc answers to
			// a request no route matches.
			if c.Code != 11 || c.Type != "callee framework" || !strings.Contains(c.Error, "route_not_found") {
				t.Errorf("call %d: %+v, want the proxy's ret 11", i, c)
			}
		}
		// Routed calls still go through.
		trpcCall(t, addr, harness.TRPCCalls{Name: "after"})
	})

	t.Run("oneway", func(t *testing.T) {
		trpcCall(t, addr, harness.TRPCCalls{Method: "SayHi", Name: "nobody", Oneway: true, N: 3})
	})
}
