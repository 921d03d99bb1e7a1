package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// trpcStreamBootstrap routes the Greeter's streams on their INIT: Chat
// with the trans_info x-route: s2 to c2, Chat, Count and Repeat otherwise
// to c1; any other stream has no route. request_timeout is short: an
// open stream must outlive it.
func trpcStreamBootstrap(port int, multiplexing bool, c1, c2 string) string {
	fn := func(m string) harness.Match { return harness.Exact("func", harness.TRPCFunc(m)) }
	return harness.Bootstrap{
		Listeners: []harness.Listener{{Port: port, Proxy: harness.MetaProtocolProxy{
			StatPrefix: "trpc_streams", Protocol: "trpc", Multiplexing: multiplexing, Extra: map[string]any{"request_timeout": "1s"},
			Routes: []harness.Route{
				{Name: "chat-s2", Match: []harness.Match{fn("Chat"), harness.Exact("x-route", "s2")}, Cluster: "c2"},
				{Name: "chat", Match: []harness.Match{fn("Chat")}, Cluster: "c1"},
				{Name: "count", Match: []harness.Match{fn("Count")}, Cluster: "c1"},
				{Name: "repeat", Match: []harness.Match{fn("Repeat")}, Cluster: "c1"},
			},
		}}},
		Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{c1}}, {Name: "c2", Endpoints: []string{c2}}},
	}.MustRender()
}

// TestTRPCStreams runs trpc-go's stream client and server through every
// proxy implementation, with and without multiplexed upstream
// connections: bidirectional, client and server streams, many at once
// from one client (one TCP connection, ids 100, 101, ...) and from several
// clients (the same ids, rewritten where they share an upstream
// connection); routing at INIT; a stream kept open past request_timeout;
// and an upstream killed mid-stream.
func TestTRPCStreams(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			s1 := harness.StartTRPCServer(t, "s1")
			for _, mux := range []bool{true, false} {
				t.Run(fmt.Sprintf("multiplexing=%v", mux), func(t *testing.T) {
					s2 := harness.StartTRPCServer(t, "s2")
					addr := px.Start(t, trpcStreamBootstrap(harness.FreePort(t), mux, s1.Addr(), s2.Addr()))
					testTRPCStreams(t, addr, s2)
				})
			}
		})
	}
}

// streamsOK runs the stream client and fails t unless every stream ended
// normally with every reply as expected (the client checks them).
func streamsOK(t *testing.T, addr string, s harness.TRPCStreams) harness.TRPCStreamResult {
	t.Helper()
	r, err := harness.TRPCStream(t, addr, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 || r.OK != max(s.Streams, 1) {
		t.Fatalf("%+v: %d of %d streams failed: %+v", s, r.Errors, r.Streams, r.Results)
	}
	return r
}

func testTRPCStreams(t *testing.T, addr string, s2 *harness.TRPCServer) {
	t.Run("bidirectional, client and server streams", func(t *testing.T) {
		for _, m := range []string{"Chat", "Count", "Repeat"} {
			r := streamsOK(t, addr, harness.TRPCStreams{Method: m, Streams: 8, Msgs: 5})
			if m != "Count" && r.Messages != 8*5 {
				t.Errorf("%s: %d replies, want %d", m, r.Messages, 8*5)
			}
		}
	})

	t.Run("several clients", func(t *testing.T) {
		// Each client's streams are 100..105: on a multiplexed upstream
		// connection the proxy gives them ids of their own.
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				r, err := harness.TRPCStream(t, addr, harness.TRPCStreams{Streams: 6, Msgs: 20})
				if err == nil && r.Errors != 0 {
					err = fmt.Errorf("%d streams failed: %+v", r.Errors, r.Results)
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("no route at INIT", func(t *testing.T) {
		r, err := harness.TRPCStream(t, addr, harness.TRPCStreams{Method: "/trpc.test.helloworld.Greeter/Nope"})
		if err != nil {
			t.Fatal(err)
		}
		if one := r.Results[0]; r.Errors != 1 || one.Code != 11 || one.Type != "callee framework" {
			t.Fatalf("%+v, want TRPC_SERVER_NOSERVICE_ERR (11) from the far side", r.Results)
		}
	})

	t.Run("open past request_timeout", func(t *testing.T) {
		// 2.5 s of round trips on streams whose INIT had 1 s.
		r := streamsOK(t, addr, harness.TRPCStreams{Streams: 2, Duration: 2500 * time.Millisecond})
		if r.Messages == 0 {
			t.Fatal("no round trips")
		}
	})

	t.Run("upstream killed mid-stream", func(t *testing.T) {
		// Three streams routed to s2 by their INIT's trans_info hold; a
		// stream on s1 runs round trips meanwhile. Killing s2 resets the
		// three with the proxy's native error, and only them.
		wait := harness.TRPCStreamAsync(t, addr, harness.TRPCStreams{Streams: 3, Msgs: 2, Hold: true, Meta: map[string]string{"x-route": "s2"}})
		busy := make(chan harness.TRPCStreamResult, 1)
		go func() {
			r, _ := harness.TRPCStream(t, addr, harness.TRPCStreams{Streams: 1, Duration: 2 * time.Second})
			busy <- r
		}()
		s2.Kill()
		r, err := wait()
		if err != nil {
			t.Fatal(err)
		}
		for i, one := range r.Results {
			// trpc-go reports the reset as "stream is already closed"
			// (351), caused by the proxy's ret and message.
			if one.Code != 351 || !strings.Contains(one.Error, "code:141") || !strings.Contains(one.Error, "closed the connection") || len(one.Replies) != 2 {
				t.Errorf("held stream %d: %+v, want its 2 replies then a reset with TRPC_CLIENT_NETWORK_ERR (141) from the proxy", i, one)
			}
		}
		if b := <-busy; b.Errors != 0 || b.Messages == 0 {
			t.Errorf("the stream on s1: %+v", b)
		}
	})
}
