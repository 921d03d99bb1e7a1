package abihost

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartOptions adjust how the host runs.
type StartOptions struct {
	// KeepEnv runs the host without GODEBUG=cgocheck=0, as Istio runs
	// Envoy: the plugin must carry the setting itself.
	KeepEnv bool
	// Env is added to the host's environment.
	Env []string
}

// Host is a running ABI host.
type Host struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	addrs  map[string]string
	order  []string // listener names in config order
	stderr lockedBuffer
	exited chan struct{}
	err    error // the exit status, once exited is closed

	statsMu sync.Mutex
}

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

// stopWait bounds the wait for the host to exit after its stdin closes; a
// host that does not exit is killed and the test fails.
const stopWait = 30 * time.Second

// Start runs the host with hostConfig (see Translate) and returns once every
// listener is bound. When the test ends the host is told to exit; the test
// fails if it crashed or exited with an error at any point.
func Start(t testing.TB, a *Artifacts, hostConfig []byte, o StartOptions) *Host {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "host.conf")
	if err := os.WriteFile(cfgPath, hostConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{cfgPath}
	if o.KeepEnv {
		args = []string{"-keep-env", cfgPath}
	}
	h := &Host{t: t, cmd: exec.Command(a.Host, args...), lines: make(chan string, 16), addrs: map[string]string{}, exited: make(chan struct{})}
	env := os.Environ()
	if o.KeepEnv {
		env = slicesDeleteGodebug(env)
	}
	h.cmd.Env = append(env, o.Env...)
	h.cmd.Stderr = &h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go h.readStdout(stdout)
	go func() {
		h.err = h.cmd.Wait()
		close(h.exited)
	}()
	t.Cleanup(h.stop)
	for line := range h.lines {
		if line == "ready" {
			return h
		}
		if f := strings.Fields(line); len(f) == 3 && f[0] == "listening" {
			h.addrs[f[1]] = f[2]
			h.order = append(h.order, f[1])
		}
	}
	<-h.exited
	t.Fatalf("abihost exited before listening: %v\n%s", h.err, h.stderr.String())
	return nil
}

func slicesDeleteGodebug(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "GODEBUG=") {
			out = append(out, e)
		}
	}
	return out
}

func (h *Host) readStdout(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		h.lines <- sc.Text()
	}
	close(h.lines)
}

// Addr returns the address a listener is bound to.
func (h *Host) Addr(listener string) string {
	a, ok := h.addrs[listener]
	if !ok {
		h.t.Fatalf("abihost has no listener %q (has %v)", listener, h.addrs)
	}
	return a
}

// FirstAddr returns the address of the config's first listener.
func (h *Host) FirstAddr() string { return h.addrs[h.order[0]] }

// PID returns the host's process id.
func (h *Host) PID() int { return h.cmd.Process.Pid }

// ProcessCPU returns the CPU time (user and system, all threads) process
// pid has used so far.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 14th and 15th fields of the line.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short line", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc's CPU times on Linux.
const clockTicks = 100

// Log returns what the host and the plugin logged so far.
func (h *Host) Log() string { return h.stderr.String() }

// Alive reports whether the host process is still running.
func (h *Host) Alive() bool {
	select {
	case <-h.exited:
		return false
	default:
		return true
	}
}

// Stats returns the host's counters: open connections and live wrappers
// (Envoy-side objects that only the plugin's finalizers release).
func (h *Host) Stats() (map[string]int64, error) {
	h.statsMu.Lock()
	defer h.statsMu.Unlock()
	if _, err := io.WriteString(h.stdin, "stats\n"); err != nil {
		return nil, fmt.Errorf("abihost: stats: %w", err)
	}
	line, ok := <-h.lines
	if !ok {
		return nil, fmt.Errorf("abihost exited: %v", h.err)
	}
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "stats" {
		return nil, fmt.Errorf("abihost: unexpected output %q", line)
	}
	out := map[string]int64{}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("abihost: stats %q: %w", kv, err)
		}
		out[k] = n
	}
	return out, nil
}

func (h *Host) stop() {
	_ = h.stdin.Close()
	select {
	case <-h.exited:
	case <-time.After(stopWait):
		_ = h.cmd.Process.Kill()
		<-h.exited
		h.t.Errorf("abihost did not exit within %v of its stdin closing", stopWait)
	}
	if h.err != nil {
		h.t.Errorf("abihost exited abnormally: %v\n%s", h.err, h.stderr.String())
	} else if h.t.Failed() {
		h.t.Logf("abihost log:\n%s", h.stderr.String())
	}
}

// StartBootstrap runs an Envoy bootstrap in the host with the built plugin:
// a bootstrap that already uses the golang filter as it is (its
// library_path replaced), a standalone one after PluginBootstrap.
func StartBootstrap(t testing.TB, a *Artifacts, bootstrap []byte, o Options, so StartOptions) *Host {
	t.Helper()
	if !IsPluginBootstrap(bootstrap) {
		var err error
		if bootstrap, err = PluginBootstrap(bootstrap, a.Plugin); err != nil {
			t.Fatal(err)
		}
	}
	o.LibraryPath = a.Plugin
	cfg, err := Translate(bootstrap, o)
	if err != nil {
		t.Fatalf("%v\nbootstrap:\n%s", err, bootstrap)
	}
	return Start(t, a, cfg, so)
}

// PIDListening returns the id of the process that listens on TCP port on
// any IPv4 address.
func PIDListening(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	inode := ""
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// local_address is hex "IP:PORT"; st 0A is LISTEN.
		if len(f) > 9 && f[3] == "0A" && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
			inode = f[9]
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	want := "socket:[" + inode + "]"
	procs, err := filepath.Glob("/proc/[0-9]*/fd/*")
	if err != nil {
		return 0, err
	}
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && l == want {
			return strconv.Atoi(strings.Split(fd, "/")[2])
		}
	}
	return 0, fmt.Errorf("no process holds the socket listening on port %d", port)
}
