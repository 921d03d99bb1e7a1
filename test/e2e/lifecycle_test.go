package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// TestStandaloneSIGTERMDrains checks the standalone proxy's lifecycle: it
// warns about configured features it does not run, and on SIGTERM it stops
// accepting, lets in-flight calls finish and exits 0.
func TestStandaloneSIGTERMDrains(t *testing.T) {
	p := harness.StartDubboProvider(t, "p1")
	port := harness.FreePort(t)
	y := dubboBootstrap(port, true, dubboRoutes(), map[string][]string{"c1": {p.Addr()}, "c2": {p.Addr()}})
	// Aeraki configs often carry tracing: accepted, with a warning.
	y = strings.Replace(y, "stat_prefix: dubbo_e2e", "stat_prefix: dubbo_e2e\n          tracing: {}", 1)
	if !strings.Contains(y, "tracing: {}") {
		t.Fatalf("could not add tracing to the bootstrap:\n%s", y)
	}
	file := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := harness.Build(t, harness.Module+"/cmd/metaproxy")
	addr := harness.Addr(port)
	mp := harness.StartListening(t, "metaproxy", addr, bin, "-c", file, "-drain-timeout", "10s")
	if !strings.Contains(mp.Output(), "tracing is not implemented yet") {
		t.Errorf("no warning about tracing in:\n%s", mp.Output())
	}

	c, err := rawdubbo.Dial(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var inflight []<-chan error
	for range 3 {
		inflight = append(inflight, goCall(c, sleepCall(700)))
	}
	time.Sleep(200 * time.Millisecond) // the calls are in flight
	start := time.Now()
	if err := syscall.Kill(mp.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := harness.WaitPortClosed(addr, 2*time.Second); err != nil {
		t.Errorf("listener still open after SIGTERM: %v", err)
	}
	for _, done := range inflight {
		if err := <-done; err != nil {
			t.Errorf("in-flight call during drain: %v", err)
		}
	}
	select {
	case <-mp.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("metaproxy did not exit after draining")
	}
	if err := mp.Wait(); err != nil {
		t.Errorf("metaproxy exit: %v, want status 0", err)
	}
	t.Logf("drained and exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
}
