package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/metaproxy/metaproxy/test/harness/load"
)

// Load is one run of the load generator.
type Load struct {
	// Loadgen is the loadgen binary.
	Loadgen string
	// Protocol is "dubbo" or "thrift"; Addr is where the client connects.
	Protocol, Addr string
	// Workers is the number of closed-loop callers.
	Workers int
	// Warmup runs first and is not measured; Duration is the measured phase.
	Warmup, Duration time.Duration
	// ProxyPID and ServerPIDs are the processes whose CPU is sampled over
	// the measured phase (ProxyPID 0: none, as for a direct case). The
	// servers' CPU is summed: the mirror of a mirror row is a server too.
	ProxyPID   int
	ServerPIDs []int
	// During, if set, is called when the measured phase starts, with the
	// phase's length; it must not block (the profiler starts perf from it).
	During func(time.Duration)
	// Counters, if set, reads the proxy's counters (Front.Counters); they
	// are read right before and right after the measured phase, for
	// Measured.Crossings.
	Counters func() (map[string]int64, error)
}

// Measured is what one load run measured. The CPU times are deltas over
// the measured phase.
type Measured struct {
	Result load.Result
	// ProxyCPU, ServerCPU and ClientCPU are the CPU time of the proxy, the
	// server and the load generator; MachineBusy is the whole machine's.
	ProxyCPU, ServerCPU, ClientCPU time.Duration
	MachineBusy                    time.Duration
	// Elapsed is the wall time between the two samples.
	Elapsed time.Duration
	// Crossings are the ABI host's cgo crossings in the measured phase;
	// nil for the other proxies (and in reports made before they were
	// counted).
	Crossings *Crossings `json:",omitempty"`
}

// Run starts the load generator, samples CPU counters when it announces the
// measured phase and again when it reports, and returns the measurement.
func (l Load) Run() (Measured, error) {
	cmd := exec.Command(l.Loadgen,
		"-proto", l.Protocol, "-addr", l.Addr, "-c", strconv.Itoa(l.Workers),
		"-warmup", l.Warmup.String(), "-d", l.Duration.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Measured{}, err
	}
	if err := cmd.Start(); err != nil {
		return Measured{}, err
	}
	// A generator that hangs (a proxy that lost a reply) is killed.
	limit := time.AfterFunc(l.Warmup+l.Duration+2*time.Minute, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	defer limit.Stop()

	m, scanErr := l.scan(stdout, cmd.Process.Pid)
	io.Copy(io.Discard, stdout) // Wait must not run before stdout is drained
	waitErr := cmd.Wait()
	switch {
	case waitErr != nil:
		return m, fmt.Errorf("loadgen: %v\n%s", waitErr, stderr.String())
	case scanErr != nil:
		return m, fmt.Errorf("loadgen: %v\n%s", scanErr, stderr.String())
	}
	return m, nil
}

// sample is the CPU counters at one instant.
type sample struct {
	procs   []time.Duration // proxy, server, client
	machine MachineCPU
	at      time.Time
}

func (l Load) sample(client int) (sample, error) {
	procs, err := cpuOf(append([]int{l.ProxyPID, client}, l.ServerPIDs...)...)
	if err != nil {
		return sample{}, err
	}
	// procs: proxy, server (all of them), client.
	var servers time.Duration
	for _, d := range procs[2:] {
		servers += d
	}
	procs = []time.Duration{procs[0], servers, procs[1]}
	mc, err := ReadMachineCPU()
	return sample{procs: procs, machine: mc, at: time.Now()}, err
}

// scan reads the generator's output: MEASURING, then the JSON summary.
func (l Load) scan(stdout io.Reader, client int) (Measured, error) {
	var (
		m        Measured
		before   sample
		counters map[string]int64
		begun    bool
	)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "MEASURING":
			c, err := l.counters()
			if err != nil {
				return m, err
			}
			s, err := l.sample(client)
			if err != nil {
				return m, err
			}
			before, counters, begun = s, c, true
			if l.During != nil {
				l.During(l.Duration)
			}
		case begun && strings.HasPrefix(line, "{"):
			after, err := l.sample(client)
			if err != nil {
				return m, err
			}
			c, err := l.counters()
			if err != nil {
				return m, err
			}
			if err := json.Unmarshal([]byte(line), &m.Result); err != nil {
				return m, fmt.Errorf("summary %q: %w", line, err)
			}
			m.ProxyCPU = after.procs[0] - before.procs[0]
			m.ServerCPU = after.procs[1] - before.procs[1]
			m.ClientCPU = after.procs[2] - before.procs[2]
			m.MachineBusy = after.machine.Busy - before.machine.Busy
			m.Elapsed = after.at.Sub(before.at)
			if c != nil {
				m.Crossings = CrossingsBetween(counters, c)
			}
			return m, nil
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	return m, fmt.Errorf("no summary line")
}

// counters reads l.Counters, nil if it is not set.
func (l Load) counters() (map[string]int64, error) {
	if l.Counters == nil {
		return nil, nil
	}
	c, err := l.Counters()
	if err != nil {
		return nil, fmt.Errorf("proxy counters: %w", err)
	}
	return c, nil
}
