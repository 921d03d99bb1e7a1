package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// TestDubboFrameLimit: a request over the codec's max_frame_bytes gets a
// native Dubbo error (BAD_REQUEST) and its connection is closed; another
// connection's call in flight at that moment completes.
func TestDubboFrameLimit(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p := harness.StartDubboProvider(t, "p1")
			b := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
				StatPrefix: "limits", Protocol: "dubbo", Routes: dubboRoutes(),
				Extra: map[string]any{"protocol": map[string]any{
					"name":         "dubbo",
					"multiplexing": true,
					"codec": map[string]any{"name": "aeraki.meta_protocol.codec.dubbo", "config": map[string]any{
						"@type": "type.googleapis.com/aeraki.meta_protocol.codec.DubboCodec", "max_frame_bytes": 4096,
					}},
				}},
			}}}, Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{p.Addr()}}, {Name: "c2", Endpoints: []string{p.Addr()}}}}
			addr := px.Start(t, b.MustRender())

			slow := goCall(dialRaw(t, addr), sleepCall(500))
			time.Sleep(100 * time.Millisecond)

			c := dialRaw(t, addr)
			r := call(t, c, sayHello(strings.Repeat("x", 10000)))
			if r.Status != 40 || !strings.Contains(r.Exception, "exceeds the maximum") {
				t.Errorf("oversized request: status %d %q, want 40 BAD_REQUEST naming the limit", r.Status, r.Exception)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Error("the connection that sent the oversized frame is still open")
			}
			if err := <-slow; err != nil {
				t.Errorf("other connection's call in flight: %v", err)
			}
			if r := call(t, dialRaw(t, addr), sayHello("small")); r.String() != p.HelloFrom("small") {
				t.Errorf("small call after: %q", r.String())
			}
		})
	}
}

// TestDubboRequestTimeout: with request_timeout set, a call the provider
// does not answer in time gets a native Dubbo timeout (SERVER_TIMEOUT) and
// the connection stays usable.
func TestDubboRequestTimeout(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p := harness.StartDubboProvider(t, "p1")
			b := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
				StatPrefix: "timeouts", Protocol: "dubbo", Multiplexing: true, Routes: dubboRoutes(),
				Extra: map[string]any{"request_timeout": "0.3s"},
			}}}, Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{p.Addr()}}, {Name: "c2", Endpoints: []string{p.Addr()}}}}
			addr := px.Start(t, b.MustRender())
			c := dialRaw(t, addr)
			// The provider answers after 3 s: a timeout reply can only come
			// from the proxy.
			r := call(t, c, sleepCall(3000))
			if r.Status != 31 || !strings.Contains(r.Exception, "timeout") {
				t.Errorf("slow call: status %d %q, want 31 SERVER_TIMEOUT", r.Status, r.Exception)
			}
			if r := call(t, c, sayHello("after")); r.String() != p.HelloFrom("after") {
				t.Errorf("call after the timeout on the same connection: %q", r.String())
			}
		})
	}
}

// TestDubboSlowlorisReaped: a client trickling a request one byte every
// 100 ms is closed once frame_receive_timeout (here 1 s) has passed since
// the frame's first byte, though it is never idle; another connection is
// served meanwhile.
func TestDubboSlowlorisReaped(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			p := harness.StartDubboProvider(t, "p1")
			b := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
				StatPrefix: "slowloris", Protocol: "dubbo", Multiplexing: true, Routes: dubboRoutes(), IdleTimeout: "5s",
				Extra: map[string]any{"frame_receive_timeout": "1s"},
			}}}, Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{p.Addr()}}, {Name: "c2", Endpoints: []string{p.Addr()}}}}
			addr := px.Start(t, b.MustRender())
			slow := dialRaw(t, addr)
			frame, err := rawdubbo.EncodeRequest(slow.NextID(), sayHello(strings.Repeat("x", 200)))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			go func() { _ = slow.Trickle(100 * time.Millisecond)(frame) }()
			if r := call(t, dialRaw(t, addr), sayHello("other")); r.String() != p.HelloFrom("other") {
				t.Errorf("another connection during the trickle: %q", r.String())
			}
			select {
			case <-slow.Done():
				t.Logf("trickling connection closed after %v", time.Since(start).Round(time.Millisecond))
			case <-time.After(20 * time.Second):
				t.Fatal("a connection trickling one frame for 20 s is still open (frame_receive_timeout 1s)")
			}
		})
	}
}
