package bench

import (
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// BenchmarkTRPC runs the trpc-go client (32 concurrent unary calls)
// against a trpc-go server directly and through the standalone proxy with
// the native tRPC codec, in the same run, and reports calls/s through the
// proxy as a ratio of direct (wall time of the client process, its start
// included), and the proxy's CPU per call. Run it once:
//
//	go test -run '^$' -bench TRPC -benchtime 1x ./bench
func BenchmarkTRPC(b *testing.B) {
	srv := harness.StartTRPCServer(b, "bench")
	y := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(b), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "trpc", Protocol: "trpc", Multiplexing: true,
		Routes: []harness.Route{{Name: "all", Cluster: "s"}},
	}}}, Clusters: []harness.Cluster{{Name: "s", Endpoints: []string{srv.Addr()}}}}.MustRender()
	addr, mp := harness.Standalone{}.StartProcess(b, y)
	const n = 40000
	run := func(to string) float64 {
		start := time.Now()
		res, err := harness.TRPCClient(b, to, harness.TRPCCalls{N: n, C: 32})
		if err != nil || res.Errors != 0 {
			b.Fatalf("trpc-go client against %s: %v (%d errors)", to, err, res.Errors)
		}
		return n / time.Since(start).Seconds()
	}
	for b.Loop() {
		direct := run(srv.Addr())
		var proxied float64
		perCall := perOp(b, mp.Pid(), n, func() { proxied = run(addr) })
		b.Logf("trpc-go unary, 32 callers: direct %.0f calls/s, through metaproxy %.0f calls/s (%.2f×); proxy CPU %.2f µs per call",
			direct, proxied, proxied/direct, perCall)
		b.ReportMetric(proxied/direct, "ratio")
		b.ReportMetric(perCall, "proxy-cpu-µs/call")
	}
}

// BenchmarkTRPCStream runs a bidirectional trpc-go stream (Chat, 8 streams
// of one client doing ping-pong round trips for 3 s) against a trpc-go
// server directly and through the standalone proxy, in the same run, and
// reports messages/s through the proxy as a ratio of direct, and the
// proxy's CPU per message (a round trip is two messages). Run it once:
//
//	go test -run '^$' -bench TRPCStream -benchtime 1x ./bench
func BenchmarkTRPCStream(b *testing.B) {
	srv := harness.StartTRPCServer(b, "bench")
	y := harness.Bootstrap{Listeners: []harness.Listener{{Port: harness.FreePort(b), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "trpc", Protocol: "trpc", Multiplexing: true,
		Routes: []harness.Route{{Name: "all", Cluster: "s"}},
	}}}, Clusters: []harness.Cluster{{Name: "s", Endpoints: []string{srv.Addr()}}}}.MustRender()
	addr, mp := harness.Standalone{}.StartProcess(b, y)
	run := func(to string) (msgs float64, perSec float64) {
		res, err := harness.TRPCStream(b, to, harness.TRPCStreams{Streams: 8, Duration: 3 * time.Second})
		if err != nil || res.Errors != 0 {
			b.Fatalf("trpc-go stream client against %s: %v (%+v)", to, err, res.Results)
		}
		msgs = 2 * float64(res.Messages)
		return msgs, msgs / res.Elapsed().Seconds()
	}
	for b.Loop() {
		_, direct := run(srv.Addr())
		var msgs, proxied float64
		before, err := cpuOf(mp.Pid())
		if err != nil {
			b.Fatal(err)
		}
		msgs, proxied = run(addr)
		after, err := cpuOf(mp.Pid())
		if err != nil {
			b.Fatal(err)
		}
		perMsg := float64((after[0] - before[0]).Nanoseconds()) / msgs / 1000
		b.Logf("trpc-go bidirectional stream, 8 streams: direct %.0f messages/s, through metaproxy %.0f messages/s (%.2f×); proxy CPU %.2f µs per message",
			direct, proxied, proxied/direct, perMsg)
		b.ReportMetric(proxied/direct, "ratio")
		b.ReportMetric(perMsg, "proxy-cpu-µs/msg")
	}
}
