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

// profileLines bounds the flat profile in the report.
const profileLines = 30

// Perf samples the on-CPU stacks of process pid with perf for d, writing
// perf.data into dir, and returns two summaries: the share of samples by
// binary (the kernel's share is mostly system calls) and the flat profile
// by symbol (self time). Go binaries keep frame pointers, so perf's stacks
// are whole.
func Perf(pid int, d time.Duration, dir string) (string, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return "", fmt.Errorf("perf is not installed (apt-get install linux-perf)")
	}
	data := filepath.Join(dir, "perf.data")
	secs := strconv.FormatFloat(d.Seconds(), 'f', 1, 64)
	if out, err := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-o", data,
		"-p", strconv.Itoa(pid), "--", "sleep", secs).CombinedOutput(); err != nil {
		return "", fmt.Errorf("perf record: %v\n%s", err, out)
	}
	byDSO, err := perfReport(data, "dso", 0)
	if err != nil {
		return "", err
	}
	bySym, err := perfReport(data, "symbol", profileLines)
	if err != nil {
		return "", err
	}
	return "share of samples by binary:\n" + byDSO + "\ntop symbols by self time:\n" + bySym, nil
}

// perfReport returns the first limit lines (all if 0) of perf's flat
// report sorted by key, without comments.
func perfReport(data, key string, limit int) (string, error) {
	out, err := exec.Command("perf", "report", "-i", data, "--stdio", "--no-children",
		"-g", "none", "--sort", key, "--percent-limit", "0.5").Output()
	if err != nil {
		return "", fmt.Errorf("perf report: %v", err)
	}
	var b strings.Builder
	n := 0
	for line := range bytes.Lines(out) {
		s := strings.TrimRight(string(line), "\n")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if limit > 0 && n == limit {
			break
		}
		b.WriteString(s + "\n")
		n++
	}
	return b.String(), nil
}
