package bench

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Profile is what perf saw of one proxy under load, in a run of its own
// (perf slows the proxy down, so these runs are not in the main table).
type Profile struct {
	Case
	// Window is how long perf counted; RPS the run's calls/s, so that
	// Window × RPS approximates the calls made while perf counted.
	Window time.Duration
	RPS    float64
	// Counts are PerfStat's counts; Stacks is PerfRecord's summary, empty
	// for proxies that are not profiled (HAProxy).
	Counts map[string]int64
	Stacks string
	// Err says why perf failed.
	Err string
}

// ProfileProxy runs PerfStat, and PerfRecord if stacks, on pid for d at
// once.
func ProfileProxy(pid int, d time.Duration, stacks bool, dir string) Profile {
	p := Profile{Window: d}
	var (
		wg      sync.WaitGroup
		errStat error
		errRec  error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Counts, errStat = PerfStat(pid, d)
	}()
	if stacks {
		p.Stacks, errRec = PerfRecord(pid, d, dir)
	}
	wg.Wait()
	for _, err := range []error{errStat, errRec} {
		if err != nil {
			p.Err += err.Error() + "\n"
		}
	}
	return p
}

// perCall is the count of the events per call during the profile window.
func (p Profile) perCall(events ...string) string {
	calls := p.RPS * p.Window.Seconds()
	if calls == 0 || p.Counts == nil {
		return "–"
	}
	var n int64
	for _, e := range events {
		n += p.Counts[e]
	}
	return fmt.Sprintf("%.2f", float64(n)/calls)
}

// syscallTable renders the system calls per call of every profile.
func syscallTable(ps []Profile) string {
	t := &table{head: []string{"protocol", "workers", "case", "calls/s", "syscalls", "read/recv", "write/send",
		"epoll waits", "futex", "nanosleep", "context switches"}}
	for _, p := range ps {
		t.add(p.Protocol, fmt.Sprint(p.Workers), p.Proxy, fmt.Sprintf("%.0f", p.RPS),
			p.perCall("raw_syscalls:sys_enter"),
			p.perCall("syscalls:sys_enter_read", "syscalls:sys_enter_recvfrom"),
			p.perCall("syscalls:sys_enter_write", "syscalls:sys_enter_sendto"),
			p.perCall("syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait"),
			p.perCall("syscalls:sys_enter_futex"),
			p.perCall("syscalls:sys_enter_nanosleep"),
			p.perCall("context-switches"))
	}
	return t.String()
}

// profilesMarkdown renders the profile section.
func profilesMarkdown(ps []Profile) string {
	var b strings.Builder
	b.WriteString("Runs of their own under perf (PROFILE=1), not in the tables above. Counts per call are " +
		"perf stat's counts over its window divided by calls/s × window. A relay that neither batches nor " +
		"coalesces makes 2 reads and 2 writes per call (request in and out, response in and out).\n\n")
	b.WriteString(syscallTable(ps))
	for _, p := range ps {
		if p.Err != "" {
			fmt.Fprintf(&b, "\n%s, %s, %d workers: perf failed: %s\n", p.Proxy, p.Protocol, p.Workers, firstLine(p.Err))
		}
		if p.Stacks != "" {
			fmt.Fprintf(&b, "\n### %s, %s, %d workers\n\n```\n%s```\n", p.Proxy, p.Protocol, p.Workers, p.Stacks)
		}
	}
	return b.String()
}
