package harness

import (
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
)

// OTLPReceiver is an in-process OpenTelemetry collector: a gRPC server
// implementing OTLP's TraceService.Export that keeps every span it gets.
// Point a cluster at Addr and a tracing provider at that cluster.
type OTLPReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	// Addr is "127.0.0.1:port".
	Addr string

	mu      sync.Mutex
	spans   []ReceivedSpan
	exports int
	more    chan struct{}
}

// ReceivedSpan is one span as the collector got it, with the service.name
// of its resource.
type ReceivedSpan struct {
	*tracepb.Span
	Service string
}

// TraceID, SpanID and ParentID are the span's ids in lowercase hex ("" for
// none).
func (s ReceivedSpan) TraceID() string  { return hex.EncodeToString(s.GetTraceId()) }
func (s ReceivedSpan) SpanID() string   { return hex.EncodeToString(s.GetSpanId()) }
func (s ReceivedSpan) ParentID() string { return hex.EncodeToString(s.GetParentSpanId()) }

// Attr returns the value of attribute key as a string ("" if absent);
// integers are rendered in decimal.
func (s ReceivedSpan) Attr(key string) string {
	for _, a := range s.GetAttributes() {
		if a.GetKey() == key {
			if iv, ok := a.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
				return strconv.FormatInt(iv.IntValue, 10)
			}
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// StartOTLPReceiver starts a receiver on a free port, stopped when the
// test ends.
func StartOTLPReceiver(t testing.TB) *OTLPReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlp receiver: %v", err)
	}
	r := &OTLPReceiver{Addr: ln.Addr().String(), more: make(chan struct{}, 1)}
	s := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s, r)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return r
}

// Export implements collectortrace.TraceServiceServer.
func (r *OTLPReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	r.exports++
	for _, rs := range req.GetResourceSpans() {
		svc := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				svc = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, ReceivedSpan{Span: sp, Service: svc})
			}
		}
	}
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// Spans returns the spans received so far.
func (r *OTLPReceiver) Spans() []ReceivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ReceivedSpan(nil), r.spans...)
}

// WaitSpans waits up to timeout for at least n spans and returns all that
// came; it fails the test if fewer did.
func (r *OTLPReceiver) WaitSpans(t testing.TB, n int, timeout time.Duration) []ReceivedSpan {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if got := r.Spans(); len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline.C:
			t.Fatalf("otlp receiver: %d spans in %v, want %d", len(r.Spans()), timeout, n)
		}
	}
}
