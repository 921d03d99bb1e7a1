package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Environment describes the machine and the software of a run.
type Environment struct {
	Start   time.Time
	CPU     string // model name
	CPUs    int
	Kernel  string
	Go      string
	HAProxy string // first line of haproxy -v, "" if not installed
	Commit  string // git describe of the repository
	// LoadBefore and LoadAfter are /proc/loadavg at the start and the end:
	// other work on the machine skews every number.
	LoadBefore, LoadAfter string
}

// ReadEnvironment describes this machine; repo is the repository root.
func ReadEnvironment(repo string) Environment {
	e := Environment{Start: time.Now().UTC(), CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadBefore: loadavg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		e.HAProxy = firstLine(string(out))
	}
	if out, err := exec.Command("git", "-C", repo, "describe", "--always", "--dirty").Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
	}
	return e
}

// loadavg returns the three load averages of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Finish records the end of the run.
func (e *Environment) Finish() { e.LoadAfter = loadavg() }

// Markdown renders e as a list.
func (e Environment) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- run: %s, commit %s\n", e.Start.Format("2006-01-02 15:04 MST"), e.Commit)
	fmt.Fprintf(&b, "- machine: %d × %s, Linux %s\n", e.CPUs, e.CPU, e.Kernel)
	ha := e.HAProxy
	if ha == "" {
		ha = "not installed"
	}
	fmt.Fprintf(&b, "- software: %s; %s\n", e.Go, ha)
	fmt.Fprintf(&b, "- load average (1, 5, 15 min) before: %s, after: %s\n", e.LoadBefore, e.LoadAfter)
	return b.String()
}
