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

func benchCorePath(b *testing.B, f codec.Factory, req, resp []byte, meta codec.KV, edits ...func(*cluster.Config)) {
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
		b.Fatal(err)
	}
	defer srv.Close()
	down := &recordConn{}
	s := srv.NewSession(down, "bench")

	// The upstream server's side: a codec to read the proxied request's id
	// and to write it into the response.
	sc := f.NewCodec()
	var rm, sm codec.Message
	rm.Frame = resp
	if err := sc.Decode(resp, &rm); err != nil {
		b.Fatal(err)
	}
	var out []byte
	edit := &codec.Edit{SetID: true}
	round := func() {
		s.OnData(req)
		sm.Reset()
		sm.Frame = d.up.last
		if err := sc.Decode(d.up.last, &sm); err != nil {
			b.Fatal(err)
		}
		edit.ID = sm.ID
		out, _ = sc.Encode(out[:0], &rm, edit)
		d.h.OnData(out)
		if len(down.last) == 0 {
			b.Fatal("no response reached the client")
		}
		down.last = down.last[:0]
	}
	for range 100 { // warm the pools
		round()
	}
	b.SetBytes(int64(len(req) + len(resp)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		round()
	}
	b.StopTimer()
	if srv.InFlight() != 0 || d.dial != 1 {
		b.Fatalf("in flight %d, dials %d", srv.InFlight(), d.dial)
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
