package bench

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
)

// BenchmarkIdleConnections measures what an idle downstream connection
// costs the standalone proxy: it opens 10,000 connections that each made
// one call (so that every per-connection buffer a call touches exists) and
// then sit idle, and reports the proxy's RSS and Go heap per connection,
// each against the same proxy before the connections. Run it once:
//
//	go test -run '^$' -bench IdleConnections -benchtime 1x ./bench
func BenchmarkIdleConnections(b *testing.B) {
	const n = 10000
	p := harness.StartDubboProvider(b, "idle")
	admin := harness.FreePort(b)
	y := harness.Bootstrap{AdminPort: admin, Listeners: []harness.Listener{{Port: harness.FreePort(b), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "idle", Protocol: "dubbo", Multiplexing: true, IdleTimeout: "3600s",
		Routes: []harness.Route{{Name: "all", Cluster: "c"}},
	}}}, Clusters: []harness.Cluster{{Name: "c", Endpoints: []string{p.Addr()}}}}.MustRender()
	addr, mp := harness.Standalone{}.StartProcess(b, y)
	heap := func() int64 { return adminValue(b, harness.Addr(admin), "server.memory_allocated") }
	rss := func() int64 {
		v, err := harness.ProcessRSS(mp.Pid())
		if err != nil {
			b.Fatal(err)
		}
		return v
	}
	var rssPer, heapPer float64
	for b.Loop() {
		rss0, heap0 := rss(), heap()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				b.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		// One heartbeat on each (a Dubbo event the proxy answers itself):
		// every connection has read and written once.
		hb := []byte{0xda, 0xbb, 0xe2, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 'N'}
		buf := make([]byte, 64)
		for i, c := range conns {
			if _, err := c.Write(hb); err != nil {
				b.Fatalf("heartbeat %d: %v", i, err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadAtLeast(c, buf, 16); err != nil {
				b.Fatalf("heartbeat reply %d: %v", i, err)
			}
		}
		// Settled: the connections are idle now.
		time.Sleep(2 * time.Second)
		rss1, heap1 := rss(), heap()
		rssPer, heapPer = float64(rss1-rss0)/n, float64(heap1-heap0)/n
		b.Logf("%d idle connections: RSS %d → %d MiB, heap %d → %d MiB", n, rss0>>20, rss1>>20, heap0>>20, heap1>>20)
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(rssPer, "RSS-B/conn")
	b.ReportMetric(heapPer, "heap-B/conn")
}

// adminValue reads one "name: value" line of the admin listener's /stats.
func adminValue(b *testing.B, admin, name string) int64 {
	resp, err := http.Get("http://" + admin + "/stats")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (\d+)$`).FindSubmatch(body)
	if m == nil {
		b.Fatalf("no %s in /stats:\n%s", name, body)
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}
