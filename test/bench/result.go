package bench

import (
	"cmp"
	"slices"
	"time"
)

// Case names one measurement.
type Case struct {
	Protocol string // a key of Protocols
	Workers  int
	Proxy    string // one of Proxies
}

// Result is one run of a case: its numbers, or why it has none.
type Result struct {
	Case
	// Round numbers the runs of the case, from 1.
	Round int
	// Skipped says why the case did not run; Failed why it failed. The
	// numbers are zero then.
	Skipped, Failed string
	Measured
	// ProxyPeakRSS is the proxy's VmHWM in bytes after the run.
	ProxyPeakRSS int64
	// ProxyRequests is the proxy's own request counter after the run, -1
	// if it has none.
	ProxyRequests int64
}

// Crossings counts the cgo crossings of the ABI host over the measured
// phase (Measured.Crossings): the deltas of its stats counters.
type Crossings struct {
	// IntoGoData are calls from C into Go with read data
	// (OnDownstreamData, OnUpstreamData); IntoGoWrite are the write
	// filter's calls (OnDownstreamWrite, one per downstream write);
	// IntoGoOther the rest (connections, events, semaphores).
	IntoGoData, IntoGoWrite, IntoGoOther int64
	// FromGoWrite are the plugin's writes, calls from Go into C
	// (envoyGoFilterDownstreamWrite, envoyGoFilterUpstreamWrite).
	FromGoWrite int64
	// Wakeups are the eventfd writes that wake another worker whose task
	// queue was empty.
	Wakeups int64
}

// crossingCounters are the ABI host's stats counters behind Crossings.
var crossingCounters = []string{"into_go_data", "into_go_write", "into_go_other", "from_go_write", "wakeups"}

// CrossingsBetween returns the crossings from the counters before to
// those after, or nil if the counters have none of them.
func CrossingsBetween(before, after map[string]int64) *Crossings {
	var d [5]int64
	found := false
	for i, k := range crossingCounters {
		a, ok := after[k]
		found = found || ok
		d[i] = a - before[k]
	}
	if !found {
		return nil
	}
	return &Crossings{IntoGoData: d[0], IntoGoWrite: d[1], IntoGoOther: d[2], FromGoWrite: d[3], Wakeups: d[4]}
}

// Total is every crossing counted: the calls into Go, the calls from Go
// and the wake-ups.
func (c Crossings) Total() int64 {
	return c.IntoGoData + c.IntoGoWrite + c.IntoGoOther + c.FromGoWrite + c.Wakeups
}

// OK reports whether the case ran and produced numbers.
func (r Result) OK() bool { return r.Skipped == "" && r.Failed == "" }

// Calls is the number of calls made in the measured phase.
func (r Result) Calls() int64 { return r.Result.OK + r.Result.Errors }

// PerCall divides d by the number of measured calls.
func (r Result) PerCall(d time.Duration) time.Duration {
	if r.Calls() == 0 {
		return 0
	}
	return d / time.Duration(r.Calls())
}

// Other is the CPU the rest of the machine (processes outside the case)
// used during the measured phase.
func (r Result) Other() time.Duration {
	return max(r.MachineBusy-r.ProxyCPU-r.ServerCPU-r.ClientCPU, 0)
}

// Results are the runs of a benchmark in the order they were made.
type Results []Result

// Runs returns the runs of c that produced numbers.
func (rs Results) Runs(c Case) Results {
	var out Results
	for _, r := range rs {
		if r.Case == c && r.OK() {
			out = append(out, r)
		}
	}
	return out
}

// Median returns the run of c with the median calls/s (the lower middle
// one for an even count): a whole run, so that its numbers belong
// together.
func (rs Results) Median(c Case) (Result, bool) {
	runs := rs.Runs(c)
	if len(runs) == 0 {
		return Result{}, false
	}
	slices.SortStableFunc(runs, func(a, b Result) int { return cmp.Compare(a.Result.RPS, b.Result.RPS) })
	return runs[(len(runs)-1)/2], true
}

// First returns the first run of c, whether it produced numbers or not.
func (rs Results) First(c Case) (Result, bool) {
	for _, r := range rs {
		if r.Case == c {
			return r, true
		}
	}
	return Result{}, false
}

// Ratio is a / b, or 0 when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
