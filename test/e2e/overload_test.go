package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// startLimitedStandalone runs the standalone proxy from b with its file
// descriptors limited to nofile (soft and hard, so Go cannot raise it), on
// the epoll reactor or with a goroutine per connection.
func startLimitedStandalone(t *testing.T, b harness.Bootstrap, nofile int, reactor bool) (addr string, mp *harness.Process) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(file, []byte(b.MustRender()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := harness.Build(t, harness.Module+"/cmd/metaproxy")
	addr = harness.Addr(b.Listeners[0].Port)
	mp = harness.StartListening(t, "metaproxy", addr, "/bin/sh", "-c",
		`ulimit -n `+strconv.Itoa(nofile)+` && METAPROXY_REACTOR=`+map[bool]string{true: "1", false: "0"}[reactor]+` exec "$0" "$@"`, bin, "-c", file, "-log-level", "warn")
	return addr, mp
}

// adminStat reads one stat from the admin listener's /stats; -1 if it
// cannot be read.
func adminStat(adminAddr, name string) int64 {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + adminAddr + "/stats")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)\.` + regexp.QuoteMeta(name) + `: (-?\d+)$`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n
}

// TestStandaloneFdExhaustion pins reliability defect 3: a connection flood
// that reaches the fd limit while the admin listener is scraped made the
// accept loop return and the process exit with status 1. Now accepting
// backs off: the process stays up, a connection opened before the flood is
// served during it, failed accepts are counted and logged a few times, not
// thousands, and new connections are served once the flood is gone.
func TestStandaloneFdExhaustion(t *testing.T) {
	for _, reactor := range []bool{true, false} {
		t.Run(map[bool]string{true: "reactor", false: "goroutines"}[reactor], func(t *testing.T) { testFdExhaustion(t, reactor) })
	}
}

func testFdExhaustion(t *testing.T, reactor bool) {
	p := harness.StartDubboProvider(t, "p1")
	admin := harness.FreePort(t)
	b := harness.Bootstrap{AdminPort: admin, Listeners: []harness.Listener{{Port: harness.FreePort(t), Proxy: harness.MetaProtocolProxy{
		StatPrefix: "flood", Protocol: "dubbo", Multiplexing: true, Routes: dubboRoutes(),
	}}}, Clusters: []harness.Cluster{{Name: "c1", Endpoints: []string{p.Addr()}}, {Name: "c2", Endpoints: []string{p.Addr()}}}}
	addr, mp := startLimitedStandalone(t, b, 64, reactor)
	adminAddr := harness.Addr(admin)

	// Two calls open both multiplexed upstream connections: during the
	// flood no new upstream socket is needed to serve this client.
	before := dialRaw(t, addr)
	for range 2 {
		if r := call(t, before, sayHello("before")); r.String() != p.HelloFrom("before") {
			t.Fatalf("call before the flood: %q", r.String())
		}
	}

	// The flood: far more connections than file descriptors, while the
	// admin listener is scraped.
	var flood []net.Conn
	stopScrape := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopScrape:
				return
			default:
			}
			adminStat(adminAddr, "cx_total")
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			continue // the backlog is full: what a flood looks like
		}
		flood = append(flood, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	r, err := before.Call(ctx, sayHello("during"))
	cancel()
	if err != nil || r.String() != p.HelloFrom("during") {
		t.Errorf("call on a connection opened before the flood, during it: %q, %v", r.String(), err)
	}
	for _, c := range flood {
		c.Close()
	}
	close(stopScrape)
	wg.Wait()
	select {
	case <-mp.Exited():
		t.Fatalf("metaproxy exited under the flood: %v", mp.Wait())
	default:
	}

	// The flood is gone: new connections are served again.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := rawdubbo.Dial(addr, 2*time.Second)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := c.Call(ctx, sayHello("after"))
			cancel()
			c.Close()
			if err == nil && r.String() == p.HelloFrom("after") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new connection served 15s after the flood: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var fails int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if fails = adminStat(adminAddr, "downstream_cx_accept_error"); fails > 0 {
			break
		}
	}
	if fails <= 0 {
		t.Errorf("downstream_cx_accept_error = %d after the flood, want > 0", fails)
	}
	if n := strings.Count(mp.Output(), "accept failed"); n > 10 {
		t.Errorf("%d log lines about failed accepts, want a few (rate-limited)", n)
	}
	t.Logf("flood: %d connections opened against a 64-fd limit; %d failed accepts counted", len(flood), fails)
}
