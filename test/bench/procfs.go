package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/abihost"
	"github.com/metaproxy/metaproxy/test/harness"
)

// PeakRSS returns the peak resident set size of process pid in bytes
// (VmHWM in /proc/<pid>/status).
func PeakRSS(pid int) (int64, error) { return harness.ProcStatus(pid, "VmHWM") }

// parseHWM returns the VmHWM of a /proc/<pid>/status file, in bytes.
func parseHWM(status []byte) (int64, error) { return harness.ParseProcStatus(status, "VmHWM") }

// MachineCPU is the aggregate CPU time of the machine since boot (the "cpu"
// line of /proc/stat): Busy is every state but idle and iowait.
type MachineCPU struct {
	Busy, Total time.Duration
}

// ReadMachineCPU reads /proc/stat.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	return parseMachineCPU(b)
}

func parseMachineCPU(stat []byte) (MachineCPU, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return MachineCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var m MachineCPU
	for i, s := range f[1:] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return MachineCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
		d := ticks(n)
		m.Total += d
		// Fields: user nice system idle iowait irq softirq steal guest
		// guest_nice; guest time is already counted in user.
		switch {
		case i == 3 || i == 4:
		case i >= 8:
			m.Total -= d
		default:
			m.Busy += d
		}
	}
	return m, nil
}

// ticks converts USER_HZ clock ticks, the unit of /proc's CPU times, to a
// duration.
func ticks(n int64) time.Duration { return time.Duration(n) * (time.Second / 100) }

// cpuOf returns the CPU time (user + system, all threads) each process has
// used so far; a pid of 0 gives 0.
func cpuOf(pids ...int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		if pid == 0 {
			continue
		}
		d, err := abihost.ProcessCPU(pid)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// perOp runs f, which makes ops requests through the proxy process pid,
// and returns the CPU the proxy spent per request, in µs.
func perOp(b *testing.B, pid int, ops float64, f func()) float64 {
	b.Helper()
	before, err := cpuOf(pid)
	if err != nil {
		b.Fatal(err)
	}
	f()
	after, err := cpuOf(pid)
	if err != nil {
		b.Fatal(err)
	}
	return float64((after[0] - before[0]).Nanoseconds()) / ops / 1000
}
