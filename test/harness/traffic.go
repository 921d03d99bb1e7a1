package harness

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Helpers of the traffic-management tests (test/e2e/traffic_*_test.go).

// StartDubboProviderVersion starts a dubbo-go provider tagged tag that
// exports the service with version version ("" for none) on a free port.
func StartDubboProviderVersion(t testing.TB, tag, version string) *DubboProvider {
	t.Helper()
	port := FreePort(t)
	bin := Build(t, DubboPeer)
	args := []string{"-mode", "provider", "-port", strconv.Itoa(port), "-tag", tag}
	if version != "" {
		args = append(args, "-version", version)
	}
	p := Start(t, "provider "+tag, bin, args...)
	return &DubboProvider{Process: p, Port: port, Tag: tag}
}

// Freeze stops the process with SIGSTOP and returns once it is stopped
// (/proc/<pid>/stat says so; Linux only): its sockets stay open and the
// kernel keeps accepting connections for it, but it reads and answers
// nothing until Thaw or Kill.
func (p *Process) Freeze() error {
	if err := syscall.Kill(p.Pid(), syscall.SIGSTOP); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
		if err != nil {
			return err
		}
		// "pid (comm) S ...": the state follows the last ')'.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i+1:]), " T") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) not stopped 10 s after SIGSTOP: %s", p.name, p.Pid(), b)
		}
		time.Sleep(time.Millisecond)
	}
}

// Thaw resumes a frozen process (SIGCONT).
func (p *Process) Thaw() error { return syscall.Kill(p.Pid(), syscall.SIGCONT) }

// ThriftPeer is the import path of the Apache Thrift peer binary.
const ThriftPeer = Module + "/test/peers/thrift/thriftpeer"

// ThriftServer is a Hello server running as its own process (so that a
// test can kill it with SIGKILL).
type ThriftServer struct {
	*Process
	Addr string
	Tag  string
}

// StartThriftServer starts the thriftpeer Hello server tagged tag on a free
// port of 127.0.0.1 with extra flags (-transport, -protocol, -service) and
// waits until it listens.
func StartThriftServer(t testing.TB, tag string, flags ...string) *ThriftServer {
	t.Helper()
	return StartThriftServerOn(t, tag, Addr(FreePort(t)), flags...)
}

// StartThriftServerOn is StartThriftServer on addr.
func StartThriftServerOn(t testing.TB, tag, addr string, flags ...string) *ThriftServer {
	t.Helper()
	bin := Build(t, ThriftPeer)
	args := append([]string{"-mode", "server", "-addr", addr, "-tag", tag}, flags...)
	p := Start(t, "thrift server "+tag, bin, args...)
	return &ThriftServer{Process: p, Addr: addr, Tag: tag}
}
