package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// dubboRoutes routes DemoService calls to two providers: by attachment
// (x-route: p2), by method (sayHello to c1, sleep to c2), with a request
// mutation on echoAttachment. Any other method has no route.
func dubboRoutes() []harness.Route {
	iface := harness.Exact("interface", harness.DubboInterface)
	method := func(m string) harness.Match { return harness.Exact("method", m) }
	return []harness.Route{
		{Name: "by-attachment", Match: []harness.Match{iface, method("sayHello"), harness.Exact("x-route", "p2")}, Cluster: "c2"},
		{Name: "hello", Match: []harness.Match{iface, method("sayHello")}, Cluster: "c1"},
		{Name: "sleep", Match: []harness.Match{iface, method("sleep")}, Cluster: "c2"},
		{Name: "echo", Match: []harness.Match{iface, method("echoAttachment")}, Cluster: "c1",
			RequestMutation: []harness.KV{{Key: "x-mutated", Value: "by-proxy"}}},
		{Name: "fail", Match: []harness.Match{iface, method("fail")}, Cluster: "c1"},
		{Name: "note", Match: []harness.Match{iface, method("note")}, Cluster: "c1"},
		{Name: "notes", Match: []harness.Match{iface, method("notes")}, Cluster: "c1"},
	}
}

// dubboBootstrap is a Dubbo listener on port with routes and one cluster per
// name in clusters.
func dubboBootstrap(port int, multiplexing bool, routes []harness.Route, clusters map[string][]string) string {
	b := harness.Bootstrap{Listeners: []harness.Listener{{Port: port, Proxy: harness.MetaProtocolProxy{
		StatPrefix: "dubbo_e2e", Protocol: "dubbo", Multiplexing: multiplexing, Routes: routes,
	}}}}
	for name, eps := range clusters {
		b.Clusters = append(b.Clusters, harness.Cluster{Name: name, Endpoints: eps})
	}
	return b.MustRender()
}

// TestDubboProxy runs real dubbo-go peers through every proxy
// implementation.
func TestDubboProxy(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p1 := harness.StartDubboProvider(t, "p1")
			p2 := harness.StartDubboProvider(t, "p2")
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					addr := px.Start(t, dubboBootstrap(harness.FreePort(t), mux, dubboRoutes(),
						map[string][]string{"c1": {p1.Addr()}, "c2": {p2.Addr()}}))
					testRouted(t, addr, p1, p2)
				})
			}
			t.Run("provider restart", func(t *testing.T) { testProviderRestart(t, px) })
			t.Run("no upstream", func(t *testing.T) { testNoUpstream(t, px) })
		})
	}
}

// testRouted runs the cases that share one proxy in front of p1 and p2.
func testRouted(t *testing.T, addr string, p1, p2 *harness.DubboProvider) {
	t.Run("consumer call", func(t *testing.T) {
		out, err := harness.DubboConsumer(t, addr, "-name", "alice", "-n", "3")
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Repeat(p1.HelloFrom("alice")+"\n", 3)
		if out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})

	t.Run("route by method", func(t *testing.T) {
		c := dialRaw(t, addr)
		if r := call(t, c, sayHello("m")); r.String() != p1.HelloFrom("m") {
			t.Errorf("sayHello: got %q, want p1's %q", r.String(), p1.HelloFrom("m"))
		}
		r := call(t, c, sleepCall(1))
		if want := "slept 1ms at p2@" + p2.Addr(); r.String() != want {
			t.Errorf("sleep: got %q, want p2's %q", r.String(), want)
		}
	})

	t.Run("route by attachment", func(t *testing.T) {
		c := dialRaw(t, addr)
		req := sayHello("a")
		req.Attachments = map[string]string{"x-route": "p2"}
		if r := call(t, c, req); r.String() != p2.HelloFrom("a") {
			t.Errorf("x-route=p2: got %q, want p2's %q", r.String(), p2.HelloFrom("a"))
		}
		req.Attachments = map[string]string{"x-route": "p3"}
		if r := call(t, c, req); r.String() != p1.HelloFrom("a") {
			t.Errorf("x-route=p3: got %q, want p1's %q", r.String(), p1.HelloFrom("a"))
		}
	})

	t.Run("unmatched", func(t *testing.T) {
		c := dialRaw(t, addr)
		r := call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "unrouted", Args: []any{"x"}})
		if r.OK() {
			t.Errorf("unrouted method answered %q, want a Dubbo error", r.String())
		}
		if r := call(t, c, sayHello("after")); r.String() != p1.HelloFrom("after") {
			t.Errorf("call after the error on the same connection: got %q", r.String())
		}
		out, err := harness.DubboConsumer(t, addr, "-method", "unrouted", "-name", "x")
		if err == nil || !strings.HasPrefix(out, "ERROR ") {
			t.Errorf("dubbo-go consumer on an unrouted method: %q, %v; want an ERROR line", out, err)
		}
	})

	t.Run("server exception", func(t *testing.T) {
		r := call(t, dialRaw(t, addr), rawdubbo.Call{Interface: harness.DubboInterface, Method: "fail", Args: []any{"kaput"}})
		if r.OK() || !strings.Contains(r.Exception, "kaput") {
			t.Errorf("fail(kaput) = %q, want the provider's exception", r.String())
		}
		out, err := harness.DubboConsumer(t, addr, "-method", "fail", "-name", "boom")
		if err == nil || !strings.HasPrefix(out, "ERROR ") || !strings.Contains(out, "boom") {
			t.Errorf("dubbo-go consumer fail(boom): %q, %v", out, err)
		}
	})

	t.Run("200 concurrent callers", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 4 {
			c := dialRaw(t, addr)
			wg.Add(1)
			go func() {
				defer wg.Done()
				concurrentHellos(t, c, 50, fmt.Sprintf("conn%d", i), func(n string) []string { return []string{p1.HelloFrom(n)} })
			}()
		}
		wg.Wait()
		out, err := harness.DubboConsumer(t, addr, "-c", "200", "-n", "2000", "-warmup", "1")
		if err != nil || !strings.HasPrefix(out, `{"ok":2000,"errors":0,`) {
			t.Errorf("dubbo-go load, 200 workers: %q, %v", out, err)
		}
	})

	t.Run("request mutation", func(t *testing.T) {
		c := dialRaw(t, addr)
		echo := func(key string) rawdubbo.Call {
			return rawdubbo.Call{Interface: harness.DubboInterface, Method: "echoAttachment", Args: []any{key},
				Attachments: map[string]string{"x-keep": "kept", "x-mutated": "by-client"}}
		}
		if r := call(t, c, echo("x-mutated")); r.String() != "by-proxy" {
			t.Errorf("provider saw x-mutated=%q, want the route's by-proxy", r.String())
		}
		if r := call(t, c, echo("x-keep")); r.String() != "kept" {
			t.Errorf("provider saw x-keep=%q, want the client's kept", r.String())
		}
	})

	t.Run("malformed frame", func(t *testing.T) {
		good, bad := dialRaw(t, addr), dialRaw(t, addr)
		type result struct {
			r   rawdubbo.Reply
			err error
		}
		results := make(chan result, 5)
		for range 5 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				r, err := good.Call(ctx, sleepCall(300))
				results <- result{r, err}
			}()
		}
		if err := bad.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-bad.Done():
		case <-time.After(callTimeout):
			t.Error("the proxy kept a connection open after a non-Dubbo frame")
		}
		want := "slept 300ms at p2@" + p2.Addr()
		for range 5 {
			res := <-results
			if res.err != nil || res.r.String() != want {
				t.Errorf("in-flight call on the other connection: %q, %v; want %q", res.r.String(), res.err, want)
			}
		}
		if r := call(t, good, sayHello("still")); r.String() != p1.HelloFrom("still") {
			t.Errorf("other connection after the bad frame: %q", r.String())
		}
	})

	t.Run("trickled and coalesced frames", func(t *testing.T) {
		c := dialRaw(t, addr)
		id := c.NextID()
		frame, err := rawdubbo.EncodeRequest(id, sayHello("slow"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout+time.Duration(len(frame))*time.Millisecond)
		defer cancel()
		r, err := c.RoundTrip(ctx, id, frame, c.Trickle(time.Millisecond))
		if err != nil || r.String() != p1.HelloFrom("slow") {
			t.Errorf("trickled frame: %q, %v", r.String(), err)
		}
		// Two frames in one write.
		id1, id2 := c.NextID(), c.NextID()
		f1, err1 := rawdubbo.EncodeRequest(id1, sayHello("first"))
		f2, err2 := rawdubbo.EncodeRequest(id2, sayHello("second"))
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		wait1, err1 := c.Await(id1)
		wait2, err2 := c.Await(id2)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if err := c.Write(append(append([]byte(nil), f1...), f2...)); err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct {
			wait func(context.Context) (rawdubbo.Reply, error)
			name string
		}{{wait1, "first"}, {wait2, "second"}} {
			r, err := w.wait(ctx)
			if err != nil || r.String() != p1.HelloFrom(w.name) {
				t.Errorf("%s coalesced frame: %q, %v", w.name, r.String(), err)
			}
		}
	})

	t.Run("heartbeat", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		r, err := dialRaw(t, addr).Heartbeat(ctx)
		if err != nil || !r.Heartbeat || !r.OK() {
			t.Errorf("heartbeat: %+v, %v", r, err)
		}
	})

	t.Run("oneway", func(t *testing.T) {
		c := dialRaw(t, addr)
		note := fmt.Sprintf("oneway-%d", time.Now().UnixNano())
		if err := c.Send(rawdubbo.Call{Interface: harness.DubboInterface, Method: "note", Args: []any{note}}); err != nil {
			t.Fatal(err)
		}
		waitNote(t, c, note)
		if s := c.Stray(); len(s) > 0 {
			t.Errorf("the proxy answered a oneway call (ids %v)", s)
		}
	})
}

// testProviderRestart kills the only provider while calls are in flight:
// every call must end with an error rather than hang, the client connection
// must survive, and calls must succeed again once the provider is back.
func testProviderRestart(t *testing.T, px harness.Proxy) {
	p := harness.StartDubboProvider(t, "restart")
	addr := px.Start(t, dubboBootstrap(harness.FreePort(t), true,
		[]harness.Route{{Name: "all", Cluster: "c"}}, map[string][]string{"c": {p.Addr()}}))
	c := dialRaw(t, addr)
	if r := call(t, c, sayHello("before")); r.String() != p.HelloFrom("before") {
		t.Fatalf("before the kill: %q", r.String())
	}

	inflight := make(chan error, 5)
	for range 5 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			r, err := c.Call(ctx, sleepCall(3000))
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				inflight <- errors.New("in-flight call hung after its provider died")
			case err == nil && r.OK():
				inflight <- fmt.Errorf("in-flight call succeeded (%q) although its provider was killed", r.String())
			default:
				inflight <- nil
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the sleeps reach the provider
	p.Kill()
	for range 5 {
		if err := <-inflight; err != nil {
			t.Error(err)
		}
	}
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		r, err := c.Call(ctx, sayHello("down"))
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			t.Errorf("call %d while the provider is down hung", i)
		case err != nil:
			t.Fatalf("call %d while the provider is down: the proxy closed the client connection: %v", i, err)
		case r.OK():
			t.Errorf("call %d while the provider is down succeeded: %q", i, r.String())
		}
	}

	p = harness.StartDubboProviderOn(t, "restart", p.Port)
	deadline := time.Now().Add(callTimeout)
	for {
		r := call(t, c, sayHello("back"))
		if r.String() == p.HelloFrom("back") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still fail after the provider came back: %q", r.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	concurrentHellos(t, c, 20, "back", func(n string) []string { return []string{p.HelloFrom(n)} })
}

// testNoUpstream runs a proxy whose cluster has nothing listening: the
// proxy itself must answer heartbeats, and calls get a Dubbo error.
func testNoUpstream(t *testing.T, px harness.Proxy) {
	dead := harness.Addr(harness.FreePort(t))
	addr := px.Start(t, dubboBootstrap(harness.FreePort(t), true,
		[]harness.Route{{Name: "all", Cluster: "dead"}}, map[string][]string{"dead": {dead}}))
	c := dialRaw(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	r, err := c.Heartbeat(ctx)
	if err != nil || !r.Heartbeat || !r.OK() {
		t.Errorf("heartbeat with no upstream: %+v, %v; want the proxy's answer", r, err)
	}
	r, err = c.Call(ctx, sayHello("nobody"))
	if err != nil || r.OK() {
		t.Errorf("call with no upstream: %q, %v; want a Dubbo error reply", r.String(), err)
	}
}
