package tracing

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/metaproxy/metaproxy/cluster"
)

// receiver is a minimal OTLP/gRPC trace collector.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	addr  *net.TCPAddr
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   []string // the service.name of each span's resource
	more  chan struct{}
}

func startReceiver(t testing.TB) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{addr: ln.Addr().(*net.TCPAddr), more: make(chan struct{}, 1)}
	s := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s, r)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return r
}

// Export implements the collector's TraceService.
func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		svc := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				svc = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				r.spans = append(r.spans, sp)
				r.svc = append(r.svc, svc)
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

// wait returns the spans once n have come (10 s at most).
func (r *receiver) wait(t testing.TB, n int) []*tracepb.Span {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]*tracepb.Span(nil), r.spans...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("the collector got %d spans in 10 s, want %d", len(got), n)
		}
	}
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.spans)
}

// clusterOf is a cluster of one endpoint.
func clusterOf(name string, addr *net.TCPAddr) cluster.Config {
	return cluster.Config{Name: name, Endpoints: []cluster.Endpoint{{Host: addr.IP.String(), Port: addr.Port}}}
}
