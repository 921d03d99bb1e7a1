package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/harness"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
	"github.com/metaproxy/metaproxy/test/thriftcodec"
)

// thriftWire is a client transport × protocol; its upstream servers speak
// the same.
type thriftWire struct {
	name string
	cfg  thriftpeer.Config
	// lib writes and reads raw frames of the wire with the Apache library.
	lib thriftcodec.Wire
}

var thriftWires = []thriftWire{
	{"framed-binary", thriftpeer.Config{Transport: "framed", Protocol: "binary"},
		thriftcodec.Wire{Transport: "framed", Protocol: "binary"}},
	{"framed-binary-nonstrict", thriftpeer.Config{Transport: "framed", Protocol: "binary", NonStrict: true},
		thriftcodec.Wire{Transport: "framed", Protocol: "binary", NonStrict: true}},
	{"framed-compact", thriftpeer.Config{Transport: "framed", Protocol: "compact"},
		thriftcodec.Wire{Transport: "framed", Protocol: "compact"}},
	{"buffered-binary", thriftpeer.Config{Transport: "buffered", Protocol: "binary"},
		thriftcodec.Wire{Transport: "unframed", Protocol: "binary"}},
	{"buffered-compact", thriftpeer.Config{Transport: "buffered", Protocol: "compact"},
		thriftcodec.Wire{Transport: "unframed", Protocol: "compact"}},
	{"header-binary", thriftpeer.Config{Transport: "header", Protocol: "binary"},
		thriftcodec.Wire{Transport: "header", Protocol: "binary"}},
	{"header-compact", thriftpeer.Config{Transport: "header", Protocol: "compact"},
		thriftcodec.Wire{Transport: "header", Protocol: "compact"}},
	// --transport framed --protocol header: a THeaderProtocol over a
	// TFramedTransport, every THeader frame behind a second length. Its
	// servers are of the same kind (a plain THeader server cannot read it).
	{"framed-header", thriftpeer.Config{Transport: "framed", Protocol: "header"},
		thriftcodec.Wire{Transport: "framed_header", Protocol: "binary"}},
}

// theader reports whether the wire carries THeader frames, framed or not.
func (w thriftWire) theader() bool { return w.lib.Header() }

// thriftSetup is one proxy in front of two Hello servers of one wire.
type thriftSetup struct {
	wire  thriftWire
	a, b  *thriftpeer.Server
	proxy string // the proxy's listener address
}

// thriftMutation is the info header the proxy adds to multiplexed
// echoHeader calls, which only THeader can carry.
const thriftMutation = "x-metaproxy"

// startThrift starts servers A and B and a proxy that routes sayHello to A
// and ping, pingCount and echoBag to B. echoHeader is routed (to B) only
// for the multiplexed service "Hello", so that a plain echoHeader call has
// no route. Calls are multiplexed on shared upstream connections, so
// sequence ids are rewritten.
func startThrift(t *testing.T, px harness.Proxy, w thriftWire) *thriftSetup {
	t.Helper()
	s := &thriftSetup{wire: w}
	srv := w.cfg
	srv.NonStrict = false
	srv.Service = "Hello" // and plain names too
	if srv.Transport == "header" {
		srv.Protocol = "header"
	}
	var err error
	for _, p := range []struct {
		s   **thriftpeer.Server
		tag string
	}{{&s.a, "A"}, {&s.b, "B"}} {
		if *p.s, err = thriftpeer.Serve("127.0.0.1:0", p.tag, srv); err != nil {
			t.Fatal(err)
		}
		server := *p.s
		t.Cleanup(func() { server.Close() })
	}
	echoHeader := harness.Route{Name: "echo-header", Cluster: "b",
		Match:           []harness.Match{harness.Exact("method", "echoHeader"), harness.Exact("interface", "Hello")},
		RequestMutation: []harness.KV{{Key: thriftMutation, Value: "added"}}}
	port := harness.FreePort(t)
	bs := harness.Bootstrap{
		Listeners: []harness.Listener{{Port: port, Proxy: harness.MetaProtocolProxy{
			Protocol:     "thrift",
			Multiplexing: true,
			Routes: []harness.Route{
				{Name: "hello", Cluster: "a", Match: []harness.Match{harness.Exact("method", "sayHello")}},
				echoHeader,
				{Name: "rest", Cluster: "b", Match: []harness.Match{{Name: "method", Regex: "^(ping|pingCount|echoBag)$"}}},
			},
			Extra: map[string]any{"protocol": map[string]any{
				"name":         "thrift",
				"multiplexing": true,
				"codec": map[string]any{
					"name": "aeraki.meta_protocol.codec.thrift",
					// The Apache Go client sends oneway calls as CALL.
					"config": map[string]any{
						"@type":    "type.googleapis.com/udpa.type.v1.TypedStruct",
						"type_url": "type.googleapis.com/metaproxy.codecs.thrift.Config",
						"value":    map[string]any{"oneway_methods": []string{"ping"}},
					},
				},
			}},
		}}},
		Clusters: []harness.Cluster{
			{Name: "a", Endpoints: []string{s.a.Addr}},
			{Name: "b", Endpoints: []string{s.b.Addr}},
		},
	}
	s.proxy = px.Start(t, bs.MustRender())
	return s
}

// dial connects a client of the setup's wire to the proxy, multiplexed as
// service if it is not empty.
func (s *thriftSetup) dial(t *testing.T, service string) *thriftpeer.Client {
	t.Helper()
	cfg := s.wire.cfg
	cfg.Service = service
	cl, err := thriftpeer.Dial(s.proxy, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", s.proxy, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func thriftCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

func TestThrift(t *testing.T) {
	for _, px := range harness.Proxies() {
		for _, w := range thriftWires {
			t.Run(px.Name()+"/"+w.name, func(t *testing.T) {
				s := startThrift(t, px, w)
				t.Run("CallsAndRoutingByMethod", s.testCallsAndRouting)
				t.Run("Oneway", s.testOneway)
				t.Run("ServerException", s.testServerException)
				t.Run("NoRouteIsAnApplicationException", s.testNoRoute)
				t.Run("Multiplexed", s.testMultiplexed)
				t.Run("ConcurrentCallers", s.testConcurrent)
				t.Run("MalformedFrameClosesOnlyItsConnection", s.testMalformed)
				t.Run("LargestFrameLengthIsAnApplicationException", s.testLargestFrame)
			})
		}
	}
}

func (s *thriftSetup) testCallsAndRouting(t *testing.T) {
	cl := s.dial(t, "")
	ctx := thriftCtx(t)
	for i := range 3 {
		name := fmt.Sprintf("bob-%d", i)
		got, err := cl.SayHello(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if want := thriftpeer.Reply(name, "A", s.a.Addr); got != want {
			t.Fatalf("sayHello: %q, want %q", got, want)
		}
	}
	bag := &hello.Bag{Text: "bag", Names: []string{"x", "y"}, Groups: map[string][]int64{"g": {1, 2}},
		Child: &hello.Bag{Blob: []byte{0, 1, 2}}, Switches: map[int32]bool{7: true}, Bits: []bool{true, false}, FarField: 40}
	got, err := cl.EchoBag(ctx, bag)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "bag" || len(got.Names) != 2 || got.Child == nil || len(got.Child.Blob) != 3 || got.FarField != 40 || !got.Switches[7] {
		t.Errorf("echoBag returned %+v", got)
	}
}

// testOneway sends pings (routed to B) and waits until B counted them all.
func (s *thriftSetup) testOneway(t *testing.T) {
	cl := s.dial(t, "")
	ctx := thriftCtx(t)
	note := "oneway-" + s.wire.name
	const pings = 20
	for range pings {
		if err := cl.Ping(ctx, note); err != nil {
			t.Fatal(err)
		}
	}
	// The pings and pingCount may travel on different upstream
	// connections: wait until B has seen them all.
	var n int32
	for deadline := time.Now().Add(callTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if n, err = cl.PingCount(ctx, note); err != nil {
			t.Fatal(err)
		}
		if n >= pings {
			break
		}
	}
	if n != pings {
		t.Fatalf("B counted %d pings, want %d", n, pings)
	}
	if got, err := cl.SayHello(ctx, "after-pings"); err != nil || !strings.HasPrefix(got, "Hello after-pings") {
		t.Fatalf("sayHello after pings: %q, %v", got, err)
	}
}

func (s *thriftSetup) testServerException(t *testing.T) {
	cl := s.dial(t, "")
	ctx := thriftCtx(t)
	_, err := cl.SayHello(ctx, thriftpeer.ErrorName)
	var he *hello.HelloError
	if !errors.As(err, &he) || he.Code != thriftpeer.ErrorCode || !strings.Contains(he.Message, "from A") {
		t.Fatalf("sayHello(%q): %v, want the HelloError thrown by A", thriftpeer.ErrorName, err)
	}
	if _, err := cl.SayHello(ctx, "after-error"); err != nil {
		t.Fatalf("call after the exception: %v", err)
	}
}

func (s *thriftSetup) testNoRoute(t *testing.T) {
	cl := s.dial(t, "")
	ctx := thriftCtx(t)
	_, err := cl.EchoHeader(ctx, "k")
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) || ae.TypeId() != thrift.UNKNOWN_METHOD || !strings.Contains(ae.Error(), "route") {
		t.Fatalf("echoHeader without a route: %v, want a TApplicationException UNKNOWN_METHOD", err)
	}
	if _, err := cl.SayHello(ctx, "after-no-route"); err != nil {
		t.Fatalf("call after the local error: %v", err)
	}
}

// testMultiplexed calls as service "Hello": the proxy sees interface=Hello.
// The echoHeader route adds an info header: the server sees it on THeader
// (framed or not);
// other transports have no headers, and the call fails with an
// INTERNAL_ERROR that says so.
func (s *thriftSetup) testMultiplexed(t *testing.T) {
	cl := s.dial(t, "Hello")
	ctx := thriftCtx(t)
	got, err := cl.SayHello(ctx, "mux")
	if want := thriftpeer.Reply("mux", "A", s.a.Addr); err != nil || got != want {
		t.Fatalf("multiplexed sayHello: %q, %v; want %q", got, err, want)
	}
	v, err := cl.EchoHeader(ctx, thriftMutation)
	if s.wire.theader() {
		if err != nil || v != "added" {
			t.Errorf("the server saw header %s=%q (%v), want %q", thriftMutation, v, err, "added")
		}
		return
	}
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) || ae.TypeId() != thrift.INTERNAL_ERROR || !strings.Contains(ae.Error(), "no headers") {
		t.Errorf("a header mutation on %s: %q, %v; want an INTERNAL_ERROR about headers", s.wire.name, v, err)
	}
	if _, err := cl.SayHello(ctx, "after-mutation"); err != nil {
		t.Fatalf("call after the failed mutation: %v", err)
	}
}

// testConcurrent runs many clients at once; every reply must answer its
// own call, although the proxy multiplexes them on shared upstream
// connections with rewritten sequence ids.
func (s *thriftSetup) testConcurrent(t *testing.T) {
	const clients, calls = 16, 100
	ctx := thriftCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		cl := s.dial(t, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				name := fmt.Sprintf("c%d-%d", c, i)
				got, err := cl.SayHello(ctx, name)
				if want := thriftpeer.Reply(name, "A", s.a.Addr); err != nil || got != want {
					errs <- fmt.Errorf("client %d call %d: %q, %v; want %q", c, i, got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testMalformedFrame sends bytes that are no Thrift message on one
// connection: the proxy closes it, and a client on another connection
// goes on working.
func (s *thriftSetup) testMalformed(t *testing.T) {
	cl := s.dial(t, "")
	ctx := thriftCtx(t)
	if _, err := cl.SayHello(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialTimeout("tcp", s.proxy, callTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Write([]byte("GET / HTTP/1.1\r\nHost: metaproxy\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(callTimeout))
	n, err := io.Copy(io.Discard, raw)
	if err != nil || n != 0 {
		t.Fatalf("the proxy answered garbage with %d bytes and %v, want a clean close", n, err)
	}
	if _, err := cl.SayHello(ctx, "after"); err != nil {
		t.Fatalf("the other connection broke: %v", err)
	}
}

// testLargestFrame sends a call whose frame declares 0x7fffffff bytes, the
// largest Thrift frame length, far over max_frame_bytes: the proxy answers
// it with a TApplicationException (PROTOCOL_ERROR) carrying its method and
// sequence id, in the call's own framing, then closes the connection. A
// first word of 0x80000000 is no frame length: the connection is closed
// without a reply. Other connections go on working. Unframed wires have no
// frame length.
func (s *thriftSetup) testLargestFrame(t *testing.T) {
	w := s.wire.lib
	if w.Transport == "unframed" {
		t.Skip("unframed messages have no frame length")
	}
	cl := s.dial(t, "")
	ctx := thriftCtx(t)
	if _, err := cl.SayHello(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	call, err := w.Write(thriftcodec.Spec{Method: "sayHello", Type: thrift.CALL, Seq: 77, Body: &hello.HelloSayHelloArgs{Name: "huge"}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(length uint32) []byte {
		t.Helper()
		f := append([]byte(nil), call...)
		binary.BigEndian.PutUint32(f, length)
		if w.Transport == "framed_header" {
			binary.BigEndian.PutUint32(f[4:], length-4) // the THeader frame inside
		}
		raw, err := net.DialTimeout("tcp", s.proxy, callTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.Write(f); err != nil {
			t.Fatal(err)
		}
		raw.SetReadDeadline(time.Now().Add(callTimeout))
		reply, err := io.ReadAll(raw)
		if err != nil {
			t.Fatalf("length %#x: reading the reply: %v (the proxy must close the connection)", length, err)
		}
		return reply
	}
	reply := send(0x7fffffff)
	r, err := thriftcodec.Read(w, reply)
	if err != nil {
		t.Fatalf("length 0x7fffffff: the library cannot read the %d-byte reply % x: %v", len(reply), reply[:min(len(reply), 16)], err)
	}
	if r.Type != thrift.EXCEPTION || r.Name != "sayHello" || r.Seq != 77 || r.AppException == nil || r.AppException.TypeId() != thrift.PROTOCOL_ERROR {
		t.Errorf("length 0x7fffffff: reply %q type %d seq %d %v, want a PROTOCOL_ERROR for sayHello seq 77", r.Name, r.Type, r.Seq, r.AppException)
	}
	if reply := send(0x80000000); len(reply) != 0 {
		t.Errorf("length 0x80000000: answered % x, want a close without reply", reply[:min(len(reply), 16)])
	}
	if _, err := cl.SayHello(ctx, "after"); err != nil {
		t.Fatalf("the other connection broke: %v", err)
	}
}

// TestThriftOnewayWithoutConfig pins reliability defect 6: without
// oneway_methods the Apache Go client's oneway ping arrives as a CALL; the
// proxy waits for its reply, times out, and used to send the timeout's
// TApplicationException to a client not waiting for it, which read it as
// the answer to its next call. Thrift clients are serial: once the client
// has sent another call, no local reply goes out for the ping, and every
// later call gets its own answer.
func TestThriftOnewayWithoutConfig(t *testing.T) {
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			cfg := thriftpeer.Config{Transport: "framed", Protocol: "binary"}
			srv, err := thriftpeer.Serve("127.0.0.1:0", "A", cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			b, admin := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
				Protocol: "thrift", Routes: []harness.Route{{Name: "all", Cluster: "a"}},
				Extra: map[string]any{"request_timeout": "0.3s"},
			}}}, Clusters: []harness.Cluster{{Name: "a", Endpoints: []string{srv.Addr}}}}, 0
			if _, ok := px.(harness.Standalone); ok {
				admin = harness.FreePort(t)
				b.AdminPort = admin
			}
			addr := px.Start(t, b.MustRender())
			cl, err := thriftpeer.Dial(addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := thriftCtx(t)
			if err := cl.Ping(ctx, "disguised"); err != nil {
				t.Fatal(err)
			}
			if got, err := cl.SayHello(ctx, "first"); err != nil || !strings.Contains(got, "first") {
				t.Fatalf("call after the oneway: %q, %v", got, err)
			}
			// Let the ping's request timeout pass.
			if admin != 0 {
				if !harness.WaitFor(t, 10*time.Second, func() bool { return adminStat(harness.Addr(admin), "local_reply_suppressed") == 1 }) {
					t.Fatalf("local_reply_suppressed = %d, want 1", adminStat(harness.Addr(admin), "local_reply_suppressed"))
				}
			} else {
				time.Sleep(1500 * time.Millisecond) // 5 × the timeout; the plugin has no admin listener
			}
			for _, name := range []string{"second", "third"} {
				if got, err := cl.SayHello(ctx, name); err != nil || !strings.Contains(got, name) {
					t.Fatalf("call after the ping's timeout: %q, %v", got, err)
				}
			}
		})
	}
}
