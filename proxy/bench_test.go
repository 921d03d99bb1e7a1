package proxy

import (
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
	"github.com/metaproxy/metaproxy/codecs/thrift"
	"github.com/metaproxy/metaproxy/internal/golden"
	"github.com/metaproxy/metaproxy/router"
	"github.com/metaproxy/metaproxy/transport"
)

// The core-path benchmarks run one request and its response through the
// connection manager with an in-memory host and real codecs: split, decode,
// route, id rewrite, encode to the upstream; then split, decode, correlate,
// id restore, encode to the client. No system calls, no goroutine switches.
// The upstream side's own work (writing the response's id, which a real
// server does) is inside the loop too.

// syncDialer connects at once and hands the handler to the benchmark.
type syncDialer struct {
	up   *recordConn
	h    transport.UpstreamHandler
	dial int
}

func (d *syncDialer) Dial(_ string, h transport.UpstreamHandler) {
	d.dial++
	d.h = h
	h.OnConnect(d.up)
}

// recordConn keeps the last write.
type recordConn struct{ last []byte }

func (c *recordConn) Write(b []byte) error { c.last = append(c.last[:0], b...); return nil }
func (c *recordConn) Close(bool)           {}

// corePath sets up one session, one upstream and the upstream server's
// side, and returns round, which runs one request and its response through
// them, and done, which checks nothing is left in flight.
func corePath(tb testing.TB, f codec.Factory, req, resp []byte, meta codec.KV, edits ...func(*cluster.Config)) (round, done func()) {
	d := &syncDialer{up: &recordConn{}}
	cfg := Config{
		StatPrefix: "bench", Protocol: "bench", Codec: f, Multiplexing: true, UpstreamConnsPerHost: 1,
		Routes: &router.Table{Routes: []*router.Route{
			{Name: "other", Matchers: []router.Matcher{{Key: meta.Key, Kind: router.Exact, Value: "nope"}}, Cluster: "c"},
			{Name: "r", Matchers: []router.Matcher{{Key: meta.Key, Kind: router.Exact, Value: meta.Value}}, Cluster: "c"},
		}},
		Clusters: []cluster.Config{{Name: "c", Type: cluster.Static, ConnectTimeout: time.Second,
			Endpoints: []cluster.Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}}}},
	}
	for _, e := range edits {
		e(&cfg.Clusters[0])
	}
	srv, err := New(cfg, Options{Dialer: d})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Close)
	down := &recordConn{}
	s := srv.NewSession(down, "bench")

	// The upstream server's side: a codec to read the proxied request's id
	// and to write it into the response.
	sc := f.NewCodec()
	var rm, sm codec.Message
	rm.Frame = resp
	if err := sc.Decode(resp, &rm); err != nil {
		tb.Fatal(err)
	}
	var out []byte
	edit := &codec.Edit{SetID: true}
	round = func() {
		s.OnData(req)
		sm.Reset()
		sm.Frame = d.up.last
		if err := sc.Decode(d.up.last, &sm); err != nil {
			tb.Fatal(err)
		}
		edit.ID = sm.ID
		out, _ = sc.Encode(out[:0], &rm, edit)
		d.h.OnData(out)
		if len(down.last) == 0 {
			tb.Fatal("no response reached the client")
		}
		down.last = down.last[:0]
	}
	for range 100 { // warm the pools
		round()
	}
	return round, func() {
		if srv.InFlight() != 0 || d.dial != 1 {
			tb.Fatalf("in flight %d, dials %d", srv.InFlight(), d.dial)
		}
	}
}

func benchCorePath(b *testing.B, f codec.Factory, req, resp []byte, meta codec.KV, edits ...func(*cluster.Config)) {
	round, done := corePath(b, f, req, resp, meta, edits...)
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		round()
	}
	b.StopTimer()
	done()
}

// TestCorePathAllocatesNothing: a request and its response, through the
// engine with real codecs, allocate nothing once the pools are warm. (The
// benchmarks report it too, but only a test fails.)
func TestCorePathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	df, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tf, err := thrift.NewFactory(thrift.Config{})
	if err != nil {
		t.Fatal(err)
	}
	treqs, trsps := golden.ThriftFrames(t, "framed-binary")
	for name, c := range map[string]struct {
		f         codec.Factory
		req, resp []byte
	}{
		"dubbo":  {df, golden.DubboFrame(t, "lib_req_typical"), golden.DubboFrame(t, "lib_rsp_value_attachments")},
		"thrift": {tf, treqs[0], trsps[0]},
	} {
		round, done := corePath(t, c.f, c.req, c.resp, codec.KV{Key: "method", Value: "sayHello"})
		if n := testing.AllocsPerRun(500, round); n != 0 {
			t.Errorf("%s: %.2f allocations per call", name, n)
		}
		done()
	}
}

func BenchmarkCorePathDubbo(b *testing.B) {
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchCorePath(b, f, golden.DubboFrame(b, "lib_req_typical"), golden.DubboFrame(b, "lib_rsp_value_attachments"),
		codec.KV{Key: "method", Value: "sayHello"})
}

// BenchmarkCorePathDubboHealth is BenchmarkCorePathDubbo with the per-call
// part of upstream health on: circuit breakers taken and given back, and
// every answer reported to outlier detection. (Active health checks cost
// nothing per call.)
func BenchmarkCorePathDubboHealth(b *testing.B) {
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchCorePath(b, f, golden.DubboFrame(b, "lib_req_typical"), golden.DubboFrame(b, "lib_rsp_value_attachments"),
		codec.KV{Key: "method", Value: "sayHello"}, func(c *cluster.Config) {
			c.MaxConnections, c.MaxPendingRequests, c.MaxRequests, c.MaxRetries = 100, 100, 100, 3
			c.OutlierDetection = &cluster.OutlierDetection{Consecutive5xx: 5, EnforcingConsecutive5xx: 100,
				Interval: time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionPercent: 10}
		})
}

func BenchmarkCorePathThriftFramedBinary(b *testing.B) {
	f, err := thrift.NewFactory(thrift.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reqs, rsps := golden.ThriftFrames(b, "framed-binary")
	req, resp := reqs[0], rsps[0]
	benchCorePath(b, f, req, resp, codec.KV{Key: "method", Value: "sayHello"})
}

func BenchmarkCorePathThriftHeaderCompact(b *testing.B) {
	f, err := thrift.NewFactory(thrift.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reqs, rsps := golden.ThriftFrames(b, "header-compact")
	req, resp := reqs[0], rsps[0]
	benchCorePath(b, f, req, resp, codec.KV{Key: "method", Value: "sayHello"})
}
