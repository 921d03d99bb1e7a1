package bench

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is everything a run's markdown file shows.
type Report struct {
	Env  Environment
	Plan Plan
	// Results are the cases of the plan, one run each.
	Results Results
	// Noise are the runs of Plan.Noise, the first of them being its run in
	// Results.
	Noise Results
	// Micro are the core-path micro-benchmarks.
	Micro []Micro
	// Profiles are perf's views of the proxies under the largest load.
	Profiles []Profile
	// Chart is the chart's file name, relative to the markdown file.
	Chart string
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# metaproxy side-by-side benchmark\n\n")
	b.WriteString(r.Env.Markdown())
	fmt.Fprintf(&b, "\nEach case: a closed-loop load generator (test/bench/loadgen, real client library) with N workers; "+
		"%v of warm-up discarded, then %v measured. CPU is utime+stime from /proc/<pid>/stat over the measured "+
		"phase divided by the calls made in it; RSS is the proxy's VmHWM. HAProxy runs `mode tcp` with nbthread %d, "+
		"the ABI host %d worker loops, metaproxy GOMAXPROCS=%d (all CPUs). See bench/README.md.\n",
		r.Plan.Warmup, r.Plan.Duration, r.Plan.Threads, r.Plan.Threads, r.Env.CPUs)
	for _, p := range r.Plan.Protocols {
		fmt.Fprintf(&b, "\n## %s\n\n%s", Protocols[p], r.mainTable(p))
	}
	fmt.Fprintf(&b, "\n## Who used the CPUs\n\nCPU µs per call in the measured phase: the load generator (client), "+
		"the server, the proxy, and everything else on the machine (other).\n\n%s", r.cpuTable())
	fmt.Fprintf(&b, "\n## Targets (issue 5)\n\n%s", r.targets())
	if len(r.Noise) > 0 {
		fmt.Fprintf(&b, "\n## Noise: the same case %d times\n\n%s", len(r.Noise), r.noise())
	}
	if len(r.Micro) > 0 {
		fmt.Fprintf(&b, "\n## Core path (go test -run '^$' -bench CorePath -benchmem ./proxy)\n\n%s", microTable(r.Micro))
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\n## Profiles\n\n%s", profilesMarkdown(r.Profiles))
	}
	if r.Chart != "" {
		fmt.Fprintf(&b, "\n## Chart\n\n![calls/s and p99 by case](%s)\n", r.Chart)
	}
	return b.String()
}

// mainTable is the table of one protocol: a row per case.
func (r *Report) mainTable(protocol string) string {
	t := &table{head: []string{"case", "workers", "calls/s", "p50 µs", "p99 µs", "max µs", "errors",
		"proxy CPU µs/call", "proxy peak RSS MiB", "calls/s ÷ direct", "calls/s ÷ HAProxy", "CPU/call ÷ HAProxy"}}
	var notes []string
	for _, res := range r.Results {
		if res.Protocol != protocol {
			continue
		}
		if !res.OK() {
			state, why := "not run", res.Skipped
			if res.Failed != "" {
				state, why = "FAILED", firstLine(res.Failed)
			}
			t.add(res.Proxy, fmt.Sprint(res.Workers), state)
			notes = append(notes, fmt.Sprintf("- %s, %d workers: %s: %s\n", res.Proxy, res.Workers, state, why))
			continue
		}
		l := res.Result
		row := []string{res.Proxy, fmt.Sprint(res.Workers), fmt.Sprintf("%.0f", l.RPS),
			fmt.Sprint(l.P50us), fmt.Sprint(l.P99us), fmt.Sprint(l.MaxUs), fmt.Sprint(l.Errors)}
		if res.Proxy == Direct {
			row = append(row, "–", "–")
		} else {
			row = append(row, us(res.PerCall(res.ProxyCPU)), mib(res.ProxyPeakRSS))
		}
		direct, _ := r.Results.Find(Case{protocol, res.Workers, Direct})
		ha, _ := r.Results.Find(Case{protocol, res.Workers, HAProxy})
		row = append(row, ratio(Ratio(l.RPS, direct.Result.RPS)), ratio(Ratio(l.RPS, ha.Result.RPS)))
		if res.Proxy == Direct {
			row = append(row, "–")
		} else {
			row = append(row, ratio(Ratio(float64(res.PerCall(res.ProxyCPU)), float64(ha.PerCall(ha.ProxyCPU)))))
		}
		t.add(row...)
	}
	out := t.String()
	if len(notes) > 0 {
		out += "\n" + strings.Join(notes, "")
	}
	return out
}

func (r *Report) cpuTable() string {
	t := &table{head: []string{"protocol", "workers", "case", "client", "server", "proxy", "other", "total", "machine busy"}}
	for _, res := range r.Results {
		if !res.OK() {
			continue
		}
		busy := 0.0
		if res.Elapsed > 0 {
			busy = float64(res.MachineBusy) / float64(res.Elapsed) / float64(r.Env.CPUs) * 100
		}
		t.add(res.Protocol, fmt.Sprint(res.Workers), res.Proxy, us(res.PerCall(res.ClientCPU)), us(res.PerCall(res.ServerCPU)),
			us(res.PerCall(res.ProxyCPU)), us(res.PerCall(res.Other())), us(res.PerCall(res.MachineBusy)), fmt.Sprintf("%.0f%%", busy))
	}
	return t.String()
}

// targets checks the goals of issue 5 case by case.
func (r *Report) targets() string {
	var b strings.Builder
	const rssLimit = 30 << 20
	for _, p := range r.Plan.Protocols {
		for _, w := range r.Plan.Workers {
			mp, ok := r.Results.Find(Case{p, w, Metaproxy})
			if !ok {
				continue
			}
			name := fmt.Sprintf("%s, %d workers", p, w)
			if ha, ok := r.Results.Find(Case{p, w, HAProxy}); ok {
				cpu := Ratio(float64(mp.PerCall(mp.ProxyCPU)), float64(ha.PerCall(ha.ProxyCPU)))
				fmt.Fprintf(&b, "- %s: metaproxy CPU/call %s µs vs HAProxy %s µs (%s, target ≤ 1.00×): %s\n",
					name, us(mp.PerCall(mp.ProxyCPU)), us(ha.PerCall(ha.ProxyCPU)), ratio(cpu), verdict(cpu <= 1))
				rps := Ratio(mp.Result.RPS, ha.Result.RPS)
				fmt.Fprintf(&b, "- %s: metaproxy %.0f calls/s vs HAProxy %.0f (%s, target ≥ 1.00×): %s\n",
					name, mp.Result.RPS, ha.Result.RPS, ratio(rps), verdict(rps >= 1))
			}
			fmt.Fprintf(&b, "- %s: metaproxy peak RSS %s MiB (target ≤ 30): %s\n", name, mib(mp.ProxyPeakRSS), verdict(mp.ProxyPeakRSS <= rssLimit))
			if so, ok := r.Results.Find(Case{p, w, ABIHost}); ok {
				cpu := Ratio(float64(so.PerCall(so.ProxyCPU)), float64(mp.PerCall(mp.ProxyCPU)))
				fmt.Fprintf(&b, "- %s: metaproxy.so CPU/call %s µs vs standalone %s µs (%s, target ≤ 1.30×): %s\n",
					name, us(so.PerCall(so.ProxyCPU)), us(mp.PerCall(mp.ProxyCPU)), ratio(cpu), verdict(cpu <= 1.3))
			}
		}
	}
	for _, m := range r.Micro {
		fmt.Fprintf(&b, "- core path %s: %.0f ns/op (target ≤ 2000), %d allocs/op (target 0): %s\n",
			m.Name, m.NsPerOp, m.AllocsPerOp, verdict(m.NsPerOp <= 2000 && m.AllocsPerOp == 0))
	}
	if b.Len() == 0 {
		return "No metaproxy case ran.\n"
	}
	return b.String()
}

func verdict(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// noise summarises the repeated runs of one case: each run, then the spread
// of each number as (max − min) / median.
func (r *Report) noise() string {
	c := r.Noise[0].Case
	t := &table{head: []string{"run", "calls/s", "p50 µs", "p99 µs", "proxy CPU µs/call"}}
	var rps, p50, p99, cpu []float64
	for i, res := range r.Noise {
		if !res.OK() {
			t.add(fmt.Sprint(i+1), "FAILED")
			continue
		}
		pc := res.PerCall(res.ProxyCPU)
		t.add(fmt.Sprint(i+1), fmt.Sprintf("%.0f", res.Result.RPS), fmt.Sprint(res.Result.P50us), fmt.Sprint(res.Result.P99us), us(pc))
		rps = append(rps, res.Result.RPS)
		p50 = append(p50, float64(res.Result.P50us))
		p99 = append(p99, float64(res.Result.P99us))
		cpu = append(cpu, float64(pc))
	}
	t.add("spread", spread(rps), spread(p50), spread(p99), spread(cpu))
	return fmt.Sprintf("Case: %s, %d workers, %s. The runs are minutes apart (first in the main table, the others after "+
		"its protocol's cases). Spread = (max − min) / median.\n\n%s", c.Protocol, c.Workers, c.Proxy, t.String())
}

// spread is (max − min) / median of xs, as a percentage.
func spread(xs []float64) string {
	if len(xs) < 2 {
		return "–"
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	if med == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", (s[len(s)-1]-s[0])/med*100)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// Plan is what a run measures.
type Plan struct {
	Protocols []string
	Workers   []int
	Proxies   []string
	// Warmup is discarded; Duration is measured.
	Warmup, Duration time.Duration
	// Threads is HAProxy's nbthread and the ABI host's worker loops.
	Threads int
	// Noise is run Repeats times in all.
	Noise   Case
	Repeats int
}
