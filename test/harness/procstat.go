package harness

import (
	"bufio"
	"bytes"
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
func ProcessRSS(pid int) (int64, error) { return ProcStatus(pid, "VmRSS") }

// ProcStatus returns a size field of /proc/<pid>/status (VmRSS, VmHWM...)
// in bytes; Linux only.
func ProcStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return ParseProcStatus(b, field)
}

// ParseProcStatus returns the size field of a /proc/<pid>/status file's
// contents, in bytes.
func ParseProcStatus(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "VmRSS:	   12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", field, rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("no %s line", field)
}
