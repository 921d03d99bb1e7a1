package bench

import (
	"time"
)

// Case names one measurement.
type Case struct {
	Protocol string // a key of Protocols
	Workers  int
	Proxy    string // one of Proxies
}

// Result is one case's numbers, or why it has none.
type Result struct {
	Case
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

// Results are the results of a run in the order they were measured.
type Results []Result

// Find returns the first result of c that ran.
func (rs Results) Find(c Case) (Result, bool) {
	for _, r := range rs {
		if r.Case == c && r.OK() {
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
