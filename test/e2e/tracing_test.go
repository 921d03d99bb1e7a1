package e2e

// Tracing (MetaProtocolProxy tracing with Envoy's
// envoy.tracers.opentelemetry provider) through every host, with a
// dubbo-go provider and an Apache Thrift THeader backend: the in-process
// OTLP receiver gets one span per call, in the caller's trace when the
// call carried a W3C traceparent (its parent the caller's span), and the
// upstream sees a traceparent whose parent is the proxy's span.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// tracingExtra is the MetaProtocolProxy tracing field as Istio writes it:
// the OpenTelemetry provider to cluster "otel", every request sampled.
func tracingExtra() map[string]any {
	return map[string]any{"tracing": map[string]any{
		"random_sampling":  map[string]any{"value": 100},
		"client_sampling":  map[string]any{"value": 100},
		"overall_sampling": map[string]any{"value": 100},
		"provider": map[string]any{
			"name": "envoy.tracers.opentelemetry",
			"typed_config": map[string]any{
				"@type":        "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
				"grpc_service": map[string]any{"envoy_grpc": map[string]any{"cluster_name": "otel"}},
				"service_name": "metaproxy-e2e",
			},
		},
	}}
}

// callerTraceparent is the traceparent of caller span i in one trace.
func callerTraceparent(trace string, i int) (tp, span string) {
	span = fmt.Sprintf("%016x", 0xabc000+i)
	return "00-" + trace + "-" + span + "-01", span
}

// checkTraced checks the spans the receiver got for calls whose upstream
// saw traceparents seen (in call order) and that carried caller spans
// (empty: a new trace): one span per call, in the caller's trace with the
// caller's span as parent, and the upstream's parent is the proxy span.
func checkTraced(t *testing.T, r *harness.OTLPReceiver, trace string, seen, callers []string, system string) {
	t.Helper()
	spans := r.WaitSpans(t, len(seen), 20*time.Second)
	if len(spans) != len(seen) {
		t.Errorf("%d spans for %d calls", len(spans), len(seen))
	}
	byID := map[string]harness.ReceivedSpan{}
	for _, s := range spans {
		byID[s.SpanID()] = s
	}
	for i, tp := range seen {
		parts := strings.Split(tp, "-")
		if len(parts) != 4 || parts[0] != "00" || parts[3] != "01" {
			t.Errorf("call %d: the upstream saw traceparent %q", i, tp)
			continue
		}
		s, ok := byID[parts[2]]
		if !ok {
			t.Errorf("call %d: the upstream's parent %s is no span the proxy exported", i, parts[2])
			continue
		}
		if s.TraceID() != parts[1] {
			t.Errorf("call %d: span trace %s, upstream trace %s", i, s.TraceID(), parts[1])
		}
		if callers[i] != "" && (s.TraceID() != trace || s.ParentID() != callers[i]) {
			t.Errorf("call %d: span in trace %s with parent %s, want the caller's %s and %s", i, s.TraceID(), s.ParentID(), trace, callers[i])
		}
		if callers[i] == "" && (s.TraceID() == trace || s.ParentID() != "") {
			t.Errorf("call %d without a traceparent: span in trace %s with parent %q, want a new root", i, s.TraceID(), s.ParentID())
		}
		if s.Attr("rpc.system") != system || s.Attr("rpc.method") == "" || s.Attr("server.address") != "127.0.0.1" ||
			s.Attr("server.port") == "" || s.Attr("network.peer.address") != "127.0.0.1" || s.Attr("metaproxy.response_flags") != "-" ||
			s.Service != "metaproxy-e2e" {
			t.Errorf("call %d: span %q of %q with attributes %v", i, s.GetName(), s.Service, s.GetAttributes())
		}
	}
}

func TestTracingDubbo(t *testing.T) {
	t.Parallel()
	p := harness.StartDubboProvider(t, "trace")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			r := harness.StartOTLPReceiver(t)
			b := dubboTraffic(t, []harness.Route{{Name: "all", Match: []harness.Match{ifaceMatch}, Cluster: "c"}}, tracingExtra(),
				harness.Cluster{Name: "c", Endpoints: []string{p.Addr()}}, harness.Cluster{Name: "otel", Endpoints: []string{r.Addr}})
			addr, admin := trafficStart(t, px, b)
			const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
			c := dialRaw(t, addr)
			var seen, callers []string
			for i := range 5 {
				att, caller := map[string]string{}, ""
				if i < 4 { // the last call starts a trace
					var tp string
					tp, caller = callerTraceparent(trace, i)
					att["traceparent"] = tp
				}
				rep := call(t, c, rawdubbo.Call{Interface: harness.DubboInterface, Method: "echoAttachment", Args: []any{"traceparent"}, Attachments: att})
				if !rep.OK() {
					t.Fatalf("call %d: status %d %q", i, rep.Status, rep.String())
				}
				seen, callers = append(seen, rep.String()), append(callers, caller)
			}
			checkTraced(t, r, trace, seen, callers, "dubbo")
			if admin != "" {
				if n := adminStat(admin, "traffic.tracing.spans_started"); n != 5 {
					t.Errorf("tracing.spans_started = %d, want 5", n)
				}
			}
		})
	}
}

func TestTracingThrift(t *testing.T) {
	t.Parallel()
	be := startThriftBackend(t, "trace")
	for _, px := range harness.Proxies() {
		t.Run(px.Name(), func(t *testing.T) {
			t.Parallel()
			r := harness.StartOTLPReceiver(t)
			bs := thriftTraffic(t, []harness.Route{{Name: "all", Cluster: "c"}}, tracingExtra(), backendCluster("c", be),
				harness.Cluster{Name: "otel", Endpoints: []string{r.Addr}})
			addr, _ := trafficStart(t, px, bs)
			cl := dialThrift(t, addr, headerBinary, "")
			const trace = "0af7651916cd43dd8448eb211c80319c"
			var seen, callers []string
			for i := range 5 {
				ctx, caller := context.Background(), ""
				if i < 4 {
					var tp string
					tp, caller = callerTraceparent(trace, i)
					ctx = hdr("traceparent", tp)
				}
				v, err := cl.EchoHeader(ctx, "traceparent")
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				seen, callers = append(seen, strings.TrimPrefix(v, "trace:")), append(callers, caller)
			}
			checkTraced(t, r, trace, seen, callers, "thrift")
			// Framed Thrift carries no headers: traced, and forwarded untouched.
			fc := dialThrift(t, addr, framedBinary, "")
			if v, err := fc.SayHello(context.Background(), "framed"); err != nil || v != be.reply("framed") {
				t.Fatalf("framed call through the tracer: %q, %v", v, err)
			}
			if spans := r.WaitSpans(t, len(seen)+1, 20*time.Second); spans[len(spans)-1].Attr("rpc.method") != "sayHello" {
				t.Errorf("the framed call's span: %q", spans[len(spans)-1].GetName())
			}
		})
	}
}
