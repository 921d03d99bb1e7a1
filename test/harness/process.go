package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StartTimeout bounds how long Start and StartListening wait for a process
// to become ready.
var StartTimeout = 30 * time.Second

// Process is a running child process in its own process group.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  lockedBuffer // stdout and stderr, interleaved

	ready   chan string // the address of the READY line
	exited  chan struct{}
	waitErr error
	kill    sync.Once
}

// Start runs bin with args and waits until it prints a line "READY <addr>"
// on stdout. The process runs in its own process group, which is killed when
// the test ends; its output is logged if the test failed. Start fails t if
// the process exits or stays silent for StartTimeout.
func Start(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	p := launch(t, name, bin, args)
	select {
	case <-p.ready:
	case <-p.exited:
		t.Fatalf("%s exited before READY: %v\n%s", name, p.waitErr, p.Output())
	case <-time.After(StartTimeout):
		t.Fatalf("%s not READY after %v\n%s", name, StartTimeout, p.Output())
	}
	return p
}

// StartListening runs bin with args and waits until addr accepts TCP
// connections. See Start for the process's lifetime.
func StartListening(t testing.TB, name, addr, bin string, args ...string) *Process {
	t.Helper()
	p := launch(t, name, bin, args)
	up := make(chan error, 1)
	go func() { up <- WaitPort(addr, StartTimeout) }()
	select {
	case err := <-up:
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, p.Output())
		}
	case <-p.exited:
		t.Fatalf("%s exited before listening on %s: %v\n%s", name, addr, p.waitErr, p.Output())
	}
	return p
}

func launch(t testing.TB, name, bin string, args []string) *Process {
	t.Helper()
	p := &Process{name: name, cmd: exec.Command(bin, args...), ready: make(chan string, 1), exited: make(chan struct{})}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = &p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", name, strings.Join(p.cmd.Args, " "), p.Output())
		}
	})
	go func() {
		p.scan(stdout)
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p
}

// scan copies stdout into the output buffer and reports the READY line.
func (p *Process) scan(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		p.out.Write([]byte(line + "\n"))
		if addr, ok := strings.CutPrefix(line, "READY"); ok {
			select {
			case p.ready <- strings.TrimSpace(addr):
			default:
			}
		}
	}
	io.Copy(&p.out, r) // an over-long line: keep the rest
}

// Addr returns the address printed on the READY line ("" for processes
// started with StartListening).
func (p *Process) Addr() string {
	select {
	case a := <-p.ready:
		p.ready <- a
		return a
	default:
		return ""
	}
}

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Kill kills the process group with SIGKILL and waits for the process to
// exit. It is idempotent.
func (p *Process) Kill() {
	p.kill.Do(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	})
}

// Run runs bin with args to completion in its own process group, killing the
// group after timeout, and returns its stdout and stderr. err is non-nil if
// the process failed or was killed.
func Run(t testing.TB, timeout time.Duration, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s killed after %v: %w", bin, timeout, errors.Join(err, ctx.Err()))
	}
	return o.String(), e.String(), err
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Wait waits for the process to exit and returns its exit error (nil for
// status 0).
func (p *Process) Wait() error {
	<-p.exited
	return p.waitErr
}
