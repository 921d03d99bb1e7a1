package tracing

import (
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/api/v1alpha"
	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/thrift"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
)

// tracingConfig is a MetaProtocolProxy tracing config to the collector
// cluster "otel" with the given percentages (negative: unset).
func tracingConfig(t testing.TB, random, client, overall float64) *v1alpha.Tracing {
	t.Helper()
	oc, err := anypb.New(&envoy.OpenTelemetryConfig{ServiceName: "metaproxy-test",
		GrpcService: &envoy.GrpcService{TargetSpecifier: &envoy.GrpcService_EnvoyGrpc_{EnvoyGrpc: &envoy.GrpcService_EnvoyGrpc{ClusterName: "otel"}}}})
	if err != nil {
		t.Fatal(err)
	}
	tr := &v1alpha.Tracing{Provider: &envoy.Tracing_Http{Name: Provider, ConfigType: &envoy.Tracing_Http_TypedConfig{TypedConfig: oc}}}
	pct := func(v float64) *envoy.Percent {
		if v < 0 {
			return nil
		}
		return &envoy.Percent{Value: v}
	}
	tr.RandomSampling, tr.ClientSampling, tr.OverallSampling = pct(random), pct(client), pct(overall)
	return tr
}

// newFilter builds a tracer for h to collector addr.
func newFilter(t testing.TB, h *filtertest.Harness, addr *net.TCPAddr, tr *v1alpha.Tracing) *Filter {
	t.Helper()
	h.Env.Cluster = func(name string) (cluster.Config, bool) { return clusterOf(name, addr), name == "otel" }
	f, warn, err := New(tr, "dubbo", h.Env)
	if err != nil || f == nil || warn != "" {
		t.Fatalf("New: %v, %q", err, warn)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// complete ends c as an OK answer from upstream after d.
func complete(h *filtertest.Harness, c *filtertest.Call, d time.Duration, o filter.Outcome) {
	c.X.Upstream, c.X.Cluster = "127.0.0.1:20881", "provider"
	if !o.Local && !o.ClientGone {
		c.X.Response = &codec.Message{Kind: codec.KindResponse, ID: 1}
	}
	o.End = c.X.Start.Add(d)
	if o.Tries == 0 {
		o.Tries = 1
	}
	c.Complete(o)
}

func header(c *filtertest.Call, k string) string {
	for _, kv := range c.X.RequestHeaders {
		if kv.Key == k {
			return kv.Value
		}
	}
	return ""
}

func attrs(sp *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, a := range sp.GetAttributes() {
		v := a.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[a.GetKey()] = v.GetStringValue()
		default:
			m[a.GetKey()] = fmt.Sprint(v.GetIntValue())
		}
	}
	return m
}

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

func TestNewTrace(t *testing.T) {
	r := startReceiver(t)
	h := filtertest.New(t)
	f := newFilter(t, h, r.addr, tracingConfig(t, -1, -1, -1)) // Envoy's defaults: 100%
	c := h.Run(f, "interface", "org.apache.dubbo.samples.DemoService", "method", "sayHello")
	if !c.Allowed() {
		t.Fatalf("the tracer stopped the request: %v", c.Reply())
	}
	tp := header(c, KeyTraceparent)
	tid, sid, flags, ok := parseTraceparent(tp)
	if !ok || !flags.IsSampled() {
		t.Fatalf("traceparent written upstream = %q, want a sampled one", tp)
	}
	complete(h, c, 3*time.Millisecond, filter.Outcome{Status: codec.StatusOK})
	sp := r.wait(t, 1)[0]
	if hex.EncodeToString(sp.GetTraceId()) != tid.String() || hex.EncodeToString(sp.GetSpanId()) != sid.String() || len(sp.GetParentSpanId()) != 0 {
		t.Errorf("span %x/%x parent %x; upstream traceparent %s: want the span's ids, no parent", sp.GetTraceId(), sp.GetSpanId(), sp.GetParentSpanId(), tp)
	}
	if sp.GetName() != "org.apache.dubbo.samples.DemoService/sayHello" || sp.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("span %q kind %v", sp.GetName(), sp.GetKind())
	}
	if d := time.Duration(sp.GetEndTimeUnixNano() - sp.GetStartTimeUnixNano()); d != 3*time.Millisecond ||
		sp.GetStartTimeUnixNano() != uint64(h.Clock.Now().UnixNano()) {
		t.Errorf("span from %d lasted %v, want the exchange's start and 3ms", sp.GetStartTimeUnixNano(), d)
	}
	want := map[string]string{"rpc.system": "dubbo", "rpc.service": "org.apache.dubbo.samples.DemoService", "rpc.method": "sayHello",
		"server.address": "127.0.0.1", "server.port": "20881", "network.peer.address": "10.1.2.3", "network.peer.port": "4567",
		"metaproxy.response_flags": "-", "metaproxy.upstream_cluster": "provider"}
	got := attrs(sp)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("status %v for an OK answer", sp.GetStatus())
	}
	r.mu.Lock()
	svc := r.svc[0]
	r.mu.Unlock()
	if svc != "metaproxy-test" {
		t.Errorf("service.name %q", svc)
	}
	if n := h.Stats.Value("test.tracing.spans_started"); n != 1 {
		t.Errorf("spans_started = %d", n)
	}
}

func TestContinuesTraceparent(t *testing.T) {
	r := startReceiver(t)
	h := filtertest.New(t)
	f := newFilter(t, h, r.addr, tracingConfig(t, 0, 100, 100)) // no new traces; every carried one
	in := "00-" + callerTrace + "-" + callerSpan + "-01"
	c := h.Run(f, "method", "sayHello", "traceparent", in, "tracestate", "vendor=x,other=y")
	tp := header(c, KeyTraceparent)
	tid, sid, _, ok := parseTraceparent(tp)
	if !ok || tid.String() != callerTrace || sid.String() == callerSpan {
		t.Fatalf("traceparent upstream = %q, want the caller's trace and the proxy's span", tp)
	}
	if ts := header(c, KeyTracestate); ts != "vendor=x,other=y" {
		t.Errorf("tracestate upstream = %q, want the caller's", ts)
	}
	complete(h, c, time.Millisecond, filter.Outcome{Status: codec.StatusOK, Tries: 3, Mirrored: 1})
	sp := r.wait(t, 1)[0]
	if hex.EncodeToString(sp.GetTraceId()) != callerTrace || hex.EncodeToString(sp.GetParentSpanId()) != callerSpan ||
		hex.EncodeToString(sp.GetSpanId()) != sid.String() {
		t.Errorf("span %x/%x parent %x, want trace %s, parent %s, id %s", sp.GetTraceId(), sp.GetSpanId(), sp.GetParentSpanId(), callerTrace, callerSpan, sid)
	}
	if sp.GetTraceState() != "vendor=x,other=y" {
		t.Errorf("span tracestate %q", sp.GetTraceState())
	}
	if a := attrs(sp); a["metaproxy.upstream_tries"] != "3" || a["metaproxy.mirrored"] != "1" || a["rpc.service"] != "" {
		t.Errorf("attributes %v: want 3 tries and no rpc.service", a)
	}
}

func TestSampling(t *testing.T) {
	r := startReceiver(t)
	in := "00-" + callerTrace + "-" + callerSpan + "-01"
	unsampled := "00-" + callerTrace + "-" + callerSpan + "-00"
	cases := []struct {
		name                    string
		random, client, overall float64
		kv                      []string
		traced                  bool
	}{
		{"random 0", 0, 100, 100, nil, false},
		{"random 100", 100, 0, 100, nil, true},
		{"carried, client 0", 100, 0, 100, []string{"traceparent", in}, false},
		{"carried, client 100", 0, 100, 100, []string{"traceparent", in}, true},
		{"carried unsampled", 100, 100, 100, []string{"traceparent", unsampled}, false},
		{"malformed is a new trace", 100, 0, 100, []string{"traceparent", "00-zz"}, true},
		{"overall 0", 100, 100, 0, nil, false},
		{"overall 0, carried", 100, 100, 0, []string{"traceparent", in}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := filtertest.New(t)
			f := newFilter(t, h, r.addr, tracingConfig(t, tc.random, tc.client, tc.overall))
			c := h.Run(f, append([]string{"method", "m"}, tc.kv...)...)
			complete(h, c, time.Millisecond, filter.Outcome{Status: codec.StatusOK})
			traced := h.Stats.Value("test.tracing.spans_started") == 1
			if traced != tc.traced {
				t.Errorf("traced = %v, want %v", traced, tc.traced)
			}
			if hasTP := header(c, KeyTraceparent) != ""; hasTP != tc.traced {
				t.Errorf("traceparent written upstream: %v, want %v", hasTP, tc.traced)
			}
		})
	}
	// A share: 25% of 4000 requests, with the seeded source.
	h := filtertest.New(t)
	f := newFilter(t, h, r.addr, tracingConfig(t, 25, 100, 100))
	for range 4000 {
		c := h.Run(f, "method", "m")
		c.Complete(filter.Outcome{End: c.X.Start, Local: true, ErrorType: codec.ErrOverloaded})
	}
	if n := h.Stats.Value("test.tracing.spans_started"); n < 850 || n > 1150 {
		t.Errorf("random_sampling 25%%: %d of 4000 traced", n)
	}
}

func TestErrorStatus(t *testing.T) {
	r := startReceiver(t)
	h := filtertest.New(t)
	f := newFilter(t, h, r.addr, tracingConfig(t, 100, 100, 100))
	c := h.Run(f, "method", "m1")
	c.X.Outcome.Flags |= filter.FlagRateLimited
	c.Complete(filter.Outcome{End: c.X.Start, Local: true, ErrorType: codec.ErrOverloaded, Flags: filter.FlagRateLimited})
	c = h.Run(f, "method", "m2")
	complete(h, c, time.Millisecond, filter.Outcome{Status: codec.StatusServerFailure})
	spans := r.wait(t, 2)
	for _, sp := range spans {
		a := attrs(sp)
		if sp.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR || a["error.type"] == "" {
			t.Errorf("span %s: status %v, error.type %q; want an error", sp.GetName(), sp.GetStatus(), a["error.type"])
		}
		if sp.GetName() == "m1" && a["metaproxy.response_flags"] != "RL" {
			t.Errorf("response flags %q, want RL", a["metaproxy.response_flags"])
		}
	}
}

// TestDeadCollector: with nothing listening, spans are dropped and counted
// and no request waits for the collector.
func TestDeadCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close() // a closed port
	qs, rt := queueSize, retry
	queueSize, retry.Enabled = 64, false
	defer func() { queueSize, retry = qs, rt }()
	h := filtertest.New(t)
	f := newFilter(t, h, addr, tracingConfig(t, 100, 100, 100))
	const n = 1000
	var slowest time.Duration
	for range n {
		start := time.Now()
		c := h.Run(f, "method", "m")
		complete(h, c, time.Millisecond, filter.Outcome{Status: codec.StatusOK})
		slowest = max(slowest, time.Since(start))
	}
	if slowest > 500*time.Millisecond {
		t.Errorf("the slowest request took %v with a dead collector", slowest)
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.Stats.Value("test.tracing.spans_dropped") != n {
		if time.Now().After(deadline) {
			t.Fatalf("spans_dropped = %d after 30 s, want %d", h.Stats.Value("test.tracing.spans_dropped"), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSharedCollector: listeners that trace to one collector share it; it
// stays up until the last lets go.
func TestSharedCollector(t *testing.T) {
	r := startReceiver(t)
	h1, h2 := filtertest.New(t), filtertest.New(t)
	h2.Env.StatPrefix = "other"
	f1 := newFilter(t, h1, r.addr, tracingConfig(t, 100, 100, 100))
	f2 := newFilter(t, h2, r.addr, tracingConfig(t, 100, 100, 100))
	if f1.col != f2.col {
		t.Fatal("two listeners to one collector got two providers")
	}
	f1.Close()
	f1.Close() // idempotent
	c := h2.Run(f2, "method", "after")
	complete(h2, c, time.Millisecond, filter.Outcome{Status: codec.StatusOK})
	if sp := r.wait(t, 1)[0]; sp.GetName() != "after" {
		t.Errorf("span %q", sp.GetName())
	}
	f2.Close()
	collectors.mu.Lock()
	left := len(collectors.m)
	collectors.mu.Unlock()
	if left != 0 {
		t.Errorf("%d collectors left after every filter closed", left)
	}
}

func TestConfigErrors(t *testing.T) {
	h := filtertest.New(t)
	if f, w, err := New(&v1alpha.Tracing{}, "dubbo", h.Env); f != nil || err != nil || !strings.Contains(w, "no provider") {
		t.Errorf("no provider: %v, %q, %v", f, w, err)
	}
	if f, w, err := New(&v1alpha.Tracing{Provider: &envoy.Tracing_Http{Name: "envoy.tracers.zipkin"}}, "dubbo", h.Env); f != nil || err != nil || !strings.Contains(w, "not supported") {
		t.Errorf("zipkin: %v, %q, %v", f, w, err)
	}
	if _, _, err := New(tracingConfig(t, 100, 100, 100), "dubbo", h.Env); err == nil || !strings.Contains(err.Error(), `unknown cluster "otel"`) {
		t.Errorf("unknown cluster: %v", err)
	}
	tr := tracingConfig(t, 100, 100, 100)
	tr.MaxTagLength = wrapperspb.UInt32(4)
	tr.Provider.ConfigType = &envoy.Tracing_Http_TypedConfig{TypedConfig: must(anypb.New(&envoy.OpenTelemetryConfig{}))}
	if _, _, err := New(tr, "dubbo", h.Env); err == nil || !strings.Contains(err.Error(), "cluster_name: value is required") {
		t.Errorf("no cluster: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTraceparent(t *testing.T) {
	ok := []string{
		"00-" + callerTrace + "-" + callerSpan + "-01",
		"01-" + callerTrace + "-" + callerSpan + "-01-future",
	}
	bad := []string{"", "00-" + callerTrace + "-" + callerSpan + "-01-x", "ff-" + callerTrace + "-" + callerSpan + "-01",
		"00-00000000000000000000000000000000-" + callerSpan + "-01", "00-" + callerTrace + "-0000000000000000-01",
		"00-" + strings.ToUpper(callerTrace) + "-" + callerSpan + "-01", "00-" + callerTrace + "-" + callerSpan + "-0",
		"01-" + callerTrace + "-" + callerSpan + "-01x"}
	for _, s := range ok {
		tid, sid, fl, good := parseTraceparent(s)
		if !good || tid.String() != callerTrace || sid.String() != callerSpan || !fl.IsSampled() {
			t.Errorf("parse %q: %v %v %v %v", s, tid, sid, fl, good)
		}
		if out := formatTraceparent(tid, sid, fl); out != "00-"+callerTrace+"-"+callerSpan+"-01" {
			t.Errorf("format: %q", out)
		}
	}
	for _, s := range bad {
		if _, _, _, good := parseTraceparent(s); good {
			t.Errorf("parse %q: accepted", s)
		}
	}
}

// BenchmarkRequest is the tracer's cost per request: OnRequest and
// OnComplete, at 100% and 0% sampling (the export happens elsewhere).
func BenchmarkRequest(b *testing.B) {
	r := startReceiver(b)
	for _, pct := range []float64{100, 0} {
		b.Run(fmt.Sprintf("sampling=%v%%", pct), func(b *testing.B) {
			h := filtertest.New(b)
			f := newFilter(b, h, r.addr, tracingConfig(b, pct, pct, 100))
			req := filtertest.Request("interface", "org.apache.dubbo.samples.DemoService", "method", "sayHello")
			resp := &codec.Message{Kind: codec.KindResponse}
			var x filter.Exchange
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				x.Reset()
				x.Request, x.Downstream, x.Start = req, "10.1.2.3:4567", time.Unix(1, 0)
				f.OnRequest(&x)
				x.Response, x.Upstream, x.Cluster = resp, "127.0.0.1:20881", "provider"
				x.Outcome = filter.Outcome{End: time.Unix(1, 1000), Status: codec.StatusOK, Tries: 1}
				f.OnComplete(&x)
			}
		})
	}
}

// A request that cannot carry headers (its codec says so: see
// codec.HeaderCarrier) is traced, and left untouched.
func TestCarriesHeaders(t *testing.T) {
	r := startReceiver(t)
	h := filtertest.New(t)
	h.Env.CarriesHeaders = (&thrift.Codec{}).CarriesHeaders
	h.Env.Cluster = func(name string) (cluster.Config, bool) { return clusterOf(name, r.addr), true }
	f, _, err := New(tracingConfig(t, 100, 100, 100), "thrift", h.Env)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := filtertest.Request("method", "m")
	req.Variant = thrift.Variant(thrift.TransportFramed, thrift.ProtocolBinary)
	c := h.Send(filter.NewChain([]filter.Named{{Name: Name, Filter: f}}, nil), req, "10.1.2.3:4567")
	if len(c.X.RequestHeaders) != 0 || h.Stats.Value("test.tracing.spans_started") != 1 {
		t.Errorf("framed Thrift: headers %v, %d spans", c.X.RequestHeaders, h.Stats.Value("test.tracing.spans_started"))
	}
	complete(h, c, time.Millisecond, filter.Outcome{Status: codec.StatusOK})
	if sp := r.wait(t, 1)[0]; attrs(sp)["rpc.system"] != "thrift" {
		t.Errorf("span attributes %v", attrs(sp))
	}
}
