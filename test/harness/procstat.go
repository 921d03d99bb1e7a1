package harness

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// StartProxy is px.Start that also returns the process id of the proxy (the
// metaproxy binary or the ABI host), for tests that watch its resources
// with ProcessRSS. pid is 0 for a Proxy it does not know.
func StartProxy(t testing.TB, px Proxy, bootstrapYAML string) (listenAddr string, pid int) {
	t.Helper()
	switch p := px.(type) {
	case Standalone:
		addr, proc := p.StartProcess(t, bootstrapYAML)
		return addr, proc.Pid()
	case ABIHost:
		h := p.StartHost(t, bootstrapYAML)
		return h.FirstAddr(), h.PID()
	}
	return px.Start(t, bootstrapYAML), 0
}

// StartProcess is Start returning the running metaproxy process too.
func (Standalone) StartProcess(t testing.TB, bootstrapYAML string) (string, *Process) {
	t.Helper()
	bin := Build(t, Module+"/cmd/metaproxy")
	addr, err := ListenerAddr(bootstrapYAML)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	file := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(file, []byte(bootstrapYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("metaproxy bootstrap:\n%s", bootstrapYAML)
		}
	})
	p := StartListening(t, "metaproxy", addr, bin, "-c", file, "-log-level", "warn")
	return addr, p
}

// ProcessRSS returns the resident set size of process pid in bytes (VmRSS
// of /proc/<pid>/status; Linux only).
func ProcessRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		// "VmRSS:	   12345 kB"
		fs := strings.Fields(v)
		if len(fs) != 2 || fs[1] != "kB" {
			return 0, fmt.Errorf("/proc/%d/status: odd VmRSS line %q", pid, v)
		}
		kb, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS line", pid)
}
