// Package tracing is MetaProtocolProxy's tracing (Envoy's
// envoy.tracers.opentelemetry provider): one OpenTelemetry span per
// sampled request, exported over OTLP/gRPC to a collector cluster, and the
// W3C trace context carried on to the upstream. It is not one of the
// meta_protocol_filters: package config builds it from the
// MetaProtocolProxy's tracing field and puts it first in the chain, so it
// sees every request. See README.md.
package tracing

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/metaproxy/metaproxy/api/v1alpha"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// Name is the filter's name in the chain.
const Name = "tracing"

// Provider is the only tracer provider metaproxy runs.
const Provider = "envoy.tracers.opentelemetry"

// Span attributes (OpenTelemetry's RPC and network semantic conventions,
// and metaproxy's own).
const (
	attrRPCSystem     = attribute.Key("rpc.system")
	attrRPCService    = attribute.Key("rpc.service")
	attrRPCMethod     = attribute.Key("rpc.method")
	attrServerAddress = attribute.Key("server.address")
	attrServerPort    = attribute.Key("server.port")
	attrPeerAddress   = attribute.Key("network.peer.address")
	attrPeerPort      = attribute.Key("network.peer.port")
	attrFlags         = attribute.Key("metaproxy.response_flags")
	attrCluster       = attribute.Key("metaproxy.upstream_cluster")
	attrTries         = attribute.Key("metaproxy.upstream_tries")
	attrMirrored      = attribute.Key("metaproxy.mirrored")
	attrErrorType     = attribute.Key("error.type")
)

// spanSlot holds the span of a sampled request.
var spanSlot = filter.NewSlot[trace.Span]("tracing.span")

// Filter traces the requests of one listener.
type Filter struct {
	cfg       *config
	col       *collector
	tracer    trace.Tracer
	kind      trace.SpanKind
	rand      filter.Rand
	clock     filter.Clock
	prefix    string
	headers   func(*codec.Message) bool // whether a request can carry traceparent
	closeOnce sync.Once

	started, dropped *filter.Stat
}

// New builds the tracer of a MetaProtocolProxy's tracing config t for a
// listener of protocol (the codec's protocol name, rpc.system), with the
// collector cluster looked up in env. It returns a nil filter and a
// warning for a config that traces nothing (no provider: metaproxy has no
// default tracer).
func New(t *v1alpha.Tracing, protocol string, env filter.Env) (*Filter, string, error) {
	c, warn, err := parse(t)
	if err != nil || c == nil {
		return nil, warn, err
	}
	cl, ok := env.Cluster(c.cluster)
	if !ok {
		return nil, "", errorf("provider.typed_config.grpc_service.envoy_grpc.cluster_name: unknown cluster %q", c.cluster)
	}
	c.protocol = protocol
	p := env.StatPrefix + ".tracing."
	f := &Filter{cfg: c, rand: env.Rand, clock: env.Clock, prefix: env.StatPrefix,
		started: env.Stats.Counter(p + "spans_started"), dropped: env.Stats.Counter(p + "spans_dropped"), kind: spanKind(env.StatPrefix), headers: env.CarriesHeaders}
	col, err := acquire(cl, c.service, env.StatPrefix, f.dropped, env.Logger)
	if err != nil {
		return nil, "", errorf("provider: %v", err)
	}
	f.col = col
	f.tracer = col.tp.Tracer("github.com/metaproxy/metaproxy/filters/tracing",
		trace.WithInstrumentationAttributes(listenerKey.String(env.StatPrefix)))
	return f, warn, nil
}

// spanKind is the kind of the listener's spans, from Istio's stat prefix
// as Envoy takes it from the listener's direction: SERVER on an inbound
// listener, CLIENT otherwise (Envoy's default direction is egress).
func spanKind(prefix string) trace.SpanKind {
	if strings.HasPrefix(prefix, "inbound|") {
		return trace.SpanKindServer
	}
	return trace.SpanKindClient
}

// OnRequest implements filter.Filter: a sampled request gets its span,
// a child of the caller's when it carried a traceparent, and the upstream
// gets the span's traceparent.
func (f *Filter) OnRequest(x *filter.Exchange) filter.Status {
	md := &x.Request.Meta
	tp, carried := md.Get(KeyTraceparent)
	var parent trace.SpanContext
	if carried {
		tid, sid, flags, ok := parseTraceparent(tp)
		carried = ok
		if ok {
			if !flags.IsSampled() || !filter.Chance(f.rand, f.cfg.client, million) {
				return filter.Continue // the caller's context goes on as it came
			}
			scc := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}
			if ts, ok := md.Get(KeyTracestate); ok && ts != "" {
				scc.TraceState, _ = trace.ParseTraceState(ts) // a malformed one is left out
			}
			parent = trace.NewSpanContext(scc)
		}
	}
	if !carried && !filter.Chance(f.rand, f.cfg.random, million) {
		return filter.Continue
	}
	if !filter.Chance(f.rand, f.cfg.overall, million) {
		return filter.Continue
	}
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, parent)
	}
	service, method := f.tag(md.Value(codec.KeyService)), f.tag(md.Value(codec.KeyMethod))
	name := method
	if service != "" {
		name = service + "/" + method
	}
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs, attrRPCSystem.String(f.cfg.protocol), attrRPCMethod.String(method))
	if service != "" {
		attrs = append(attrs, attrRPCService.String(service))
	}
	if host, port, err := net.SplitHostPort(x.Downstream); err == nil {
		attrs = append(attrs, attrPeerAddress.String(host))
		if n, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attrPeerPort.Int(n))
		}
	}
	_, span := f.tracer.Start(ctx, name, trace.WithSpanKind(f.kind), trace.WithTimestamp(x.Start), trace.WithAttributes(attrs...))
	spanSlot.Set(x, span)
	f.started.Inc()
	if !f.headers(x.Request) {
		return filter.Continue // traced, but the upstream cannot be told
	}
	sc := span.SpanContext()
	x.SetRequestHeader(KeyTraceparent, formatTraceparent(sc.TraceID(), sc.SpanID(), sc.TraceFlags()))
	if ts := sc.TraceState(); ts.Len() > 0 {
		x.SetRequestHeader(KeyTracestate, ts.String()) // as received: the proxy adds no entry
	}
	return filter.Continue
}

// OnComplete implements filter.Completer: the span ends with the outcome.
func (f *Filter) OnComplete(x *filter.Exchange) {
	span, ok := spanSlot.Get(x)
	if !ok || span == nil {
		return
	}
	o := &x.Outcome
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, attrFlags.String(filter.ResponseFlags(x)))
	if host, port, err := net.SplitHostPort(x.Upstream); err == nil {
		attrs = append(attrs, attrServerAddress.String(host))
		if n, err := strconv.Atoi(port); err == nil {
			attrs = append(attrs, attrServerPort.Int(n))
		}
	}
	if x.Cluster != "" {
		attrs = append(attrs, attrCluster.String(x.Cluster))
	}
	if o.Mirrored > 0 {
		attrs = append(attrs, attrMirrored.Int(o.Mirrored))
	}
	if o.Tries > 1 {
		attrs = append(attrs, attrTries.Int(o.Tries))
	}
	if filter.ResponseCode(x) != "0" {
		desc := errorType(x)
		attrs = append(attrs, attrErrorType.String(desc))
		span.SetStatus(codes.Error, desc)
	}
	span.SetAttributes(attrs...)
	end := o.End
	if end.IsZero() {
		end = f.clock.Now()
	}
	span.End(trace.WithTimestamp(end))
}

// errorType names why an exchange did not end with an OK answer.
func errorType(x *filter.Exchange) string {
	o := &x.Outcome
	switch {
	case o.ClientGone:
		return "client_gone"
	case o.Local:
		return o.ErrorType.String()
	case x.Response == nil:
		return "no_response"
	}
	return o.Status.String()
}

// tag returns a copy of metadata value v (the codec's may point into the
// frame, which outlives no request), cut at max_tag_length.
func (f *Filter) tag(v string) string {
	if len(v) > f.cfg.maxTag {
		v = v[:f.cfg.maxTag]
	}
	return strings.Clone(v)
}

// Close implements io.Closer: the shared collector is let go (the last
// user flushes and shuts it down).
func (f *Filter) Close() error {
	f.closeOnce.Do(func() { f.col.release(f.prefix) })
	return nil
}
