// Package load runs a closed-loop load against any call function and
// summarises latencies. It is shared by the peer drivers (dubbopeer, the
// Thrift peers) so that every protocol reports the same numbers.
package load

import (
	"encoding/json"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options shape a run. Exactly one of Calls and Duration bounds it.
type Options struct {
	// Workers is the number of concurrent callers (each waits for its reply
	// before the next call: a closed loop).
	Workers int
	// Calls is the total number of measured calls, shared by all workers.
	Calls int
	// Duration bounds the measured phase when Calls is zero.
	Duration time.Duration
	// Warmup calls per worker run first and are not measured.
	Warmup int
}

// Result is the summary printed as one JSON line.
type Result struct {
	OK     int64   `json:"ok"`
	Errors int64   `json:"errors"`
	RPS    float64 `json:"rps"`
	P50us  int64   `json:"p50_us"`
	P90us  int64   `json:"p90_us"`
	P99us  int64   `json:"p99_us"`
	MaxUs  int64   `json:"max_us"`
	// FirstError is the message of the first failed call, if any.
	FirstError string `json:"first_error,omitempty"`
}

// JSON returns r as one line of JSON.
func (r Result) JSON() string {
	b, _ := json.Marshal(r) // a struct of numbers and a string cannot fail
	return string(b)
}

// Run calls call from o.Workers goroutines until o.Calls calls were made or
// o.Duration elapsed, and summarises the measured calls. worker is the index
// of the calling goroutine, so call may keep per-worker state.
func Run(o Options, call func(worker int) error) Result {
	if o.Workers < 1 {
		o.Workers = 1
	}
	var wg sync.WaitGroup
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < o.Warmup; i++ {
				_ = call(w) // warm-up results are discarded by design
			}
		}()
	}
	wg.Wait()

	var (
		issued   atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		lats     = make([][]time.Duration, o.Workers)
		start    = time.Now()
		deadline = start.Add(o.Duration)
	)
	more := func() bool {
		if o.Calls > 0 {
			return issued.Add(1) <= int64(o.Calls)
		}
		return time.Now().Before(deadline)
	}
	for w := 0; w < o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for more() {
				t0 := time.Now()
				err := call(w)
				lats[w] = append(lats[w], time.Since(t0))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := Result{Errors: errs.Load(), OK: int64(len(all)) - errs.Load()}
	if fe, ok := firstErr.Load().(string); ok {
		r.FirstError = fe
	}
	if len(all) > 0 {
		r.RPS = float64(len(all)) / elapsed.Seconds()
		r.P50us = pct(all, 50).Microseconds()
		r.P90us = pct(all, 90).Microseconds()
		r.P99us = pct(all, 99).Microseconds()
		r.MaxUs = all[len(all)-1].Microseconds()
	}
	return r
}

// pct returns the p-th percentile of sorted (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return sorted[i-1]
}
