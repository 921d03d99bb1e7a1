package bench

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// profileLines bounds each perf listing in the report.
const profileLines = 25

// PerfRecord samples the on-CPU stacks of process pid with perf for d,
// writing perf.data into dir, and returns three summaries: the share of
// samples by binary (the kernel's is mostly system calls), the inclusive
// cost of the proxy's own and Go's functions (what a read or a write costs
// with the kernel work below it), and their self time. Go binaries keep
// frame pointers, so the stacks are whole. Kernel self time is not listed:
// in a VM it piles up on the instruction that re-enables interrupts.
func PerfRecord(pid int, d time.Duration, dir string) (string, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return "", errNoPerf
	}
	data := filepath.Join(dir, "perf.data")
	if out, err := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-o", data,
		"-p", strconv.Itoa(pid), "--", "sleep", seconds(d)).CombinedOutput(); err != nil {
		return "", fmt.Errorf("perf record: %v\n%s", err, out)
	}
	var b strings.Builder
	for _, v := range []struct {
		title string
		args  []string
		user  bool
	}{
		{"share of samples by binary", []string{"--no-children", "--sort", "dso"}, false},
		{"user-space functions by inclusive cost (children)", []string{"--children", "--sort", "symbol"}, true},
		{"user-space functions by self time", []string{"--no-children", "--sort", "symbol"}, true},
	} {
		out, err := exec.Command("perf", append([]string{"report", "-i", data, "--stdio", "-g", "none",
			"--percent-limit", "0.5"}, v.args...)...).Output()
		if err != nil {
			return "", fmt.Errorf("perf report: %v", err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", v.title, reportLines(out, v.user))
	}
	return b.String(), nil
}

var errNoPerf = fmt.Errorf("perf is not installed (apt-get install linux-perf)")

// reportLines returns perf report's result lines without comments and
// trailing columns, at most profileLines of them; user keeps only
// user-space symbols ("[.]").
func reportLines(out []byte, user bool) string {
	var b strings.Builder
	n := 0
	for line := range bytes.Lines(out) {
		s := strings.TrimRight(string(line), "\n")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") || (user && !strings.Contains(s, "[.]")) {
			continue
		}
		if n == profileLines {
			break
		}
		s, _, _ = strings.Cut(s, "  -  ")
		b.WriteString(strings.TrimRight(s, " ") + "\n")
		n++
	}
	return b.String()
}

// SyscallEvents are the events PerfStat counts: every system call, the
// ones a relay makes per message (Go reads and writes, HAProxy receives
// and sends), event waits, thread wake-ups and context switches.
var SyscallEvents = []string{
	"raw_syscalls:sys_enter",
	"syscalls:sys_enter_read", "syscalls:sys_enter_write",
	"syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto",
	"syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait",
	"syscalls:sys_enter_futex", "syscalls:sys_enter_nanosleep",
	"context-switches",
}

// PerfStat counts SyscallEvents in process pid for d (perf stat, counting
// mode: no sampling) and returns the counts by event.
func PerfStat(pid int, d time.Duration) (map[string]int64, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, errNoPerf
	}
	out, err := exec.Command("perf", "stat", "-x", ",", "-e", strings.Join(SyscallEvents, ","),
		"-p", strconv.Itoa(pid), "--", "sleep", seconds(d)).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("perf stat: %v\n%s", err, out)
	}
	return parsePerfStat(out)
}

// parsePerfStat reads perf stat's CSV output (value,unit,event,...); an
// event perf could not count is an error, one that did not happen is 0.
func parsePerfStat(out []byte) (map[string]int64, error) {
	counts := map[string]int64{}
	for line := range bytes.Lines(out) {
		f := strings.Split(strings.TrimSpace(string(line)), ",")
		if len(f) < 3 || f[2] == "" {
			continue
		}
		switch f[0] {
		case "<not counted>":
			counts[f[2]] = 0
		case "<not supported>":
			return nil, fmt.Errorf("perf stat: %s is not supported here", f[2])
		default:
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("perf stat: %q: %w", line, err)
			}
			counts[f[2]] = n
		}
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("perf stat: no counts in %q", out)
	}
	return counts, nil
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) }
