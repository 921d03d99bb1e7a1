package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is everything a run's markdown file shows.
type Report struct {
	Env  Environment
	Plan Plan
	// Results are every run of every case of the plan.
	Results Results
	// Micro are the core-path micro-benchmarks.
	Micro []Micro
	// Scale are the scale benchmarks' results (routes, endpoints,
	// connections), when make bench ran them.
	Scale []Bench `json:",omitempty"`
	// Profiles are perf's views of the proxies under the largest load.
	Profiles []Profile
	// Chart is the chart's file name, relative to the markdown file.
	Chart string
}

// Plan is what a run measures.
type Plan struct {
	Protocols []string
	Workers   []int
	Proxies   []string
	// Warmup is discarded; Duration is measured.
	Warmup, Duration time.Duration
	// Rounds is how many times each case runs. The rounds of a worker
	// count are interleaved (every proxy once, then again), so that
	// changing load on the machine hits all proxies alike; tables show
	// each case's median run.
	Rounds int
	// Threads is HAProxy's nbthread and the ABI host's worker loops.
	Threads int
}

// Cases lists the cases of p in table order.
func (p Plan) Cases(protocol string) []Case {
	var cs []Case
	for _, w := range p.Workers {
		for _, k := range p.Proxies {
			cs = append(cs, Case{protocol, w, k})
		}
	}
	return cs
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# metaproxy side-by-side benchmark\n\n")
	b.WriteString(r.Env.Markdown())
	fmt.Fprintf(&b, "\nEach case: a closed-loop load generator (test/bench/loadgen, real client library) with N workers; "+
		"%v of warm-up discarded, then %v measured; %d rounds, the row shows the run with the median calls/s. "+
		"CPU is utime+stime from /proc/<pid>/stat over the measured phase divided by the calls made in it; "+
		"RSS is the proxy's VmHWM. HAProxy runs `mode tcp` with nbthread %d, the ABI host %d worker loops, "+
		"metaproxy GOMAXPROCS=%d (all CPUs). See bench/README.md.\n",
		r.Plan.Warmup, r.Plan.Duration, r.Plan.Rounds, r.Plan.Threads, r.Plan.Threads, r.Env.CPUs)
	for _, p := range r.Plan.Protocols {
		fmt.Fprintf(&b, "\n## %s\n\n%s", Protocols[p], r.mainTable(p))
	}
	fmt.Fprintf(&b, "\n## Who used the CPUs\n\nCPU µs per call in the measured phase of the median run: the load "+
		"generator (client), the server, the proxy, and everything else on the machine (other).\n\n%s", r.cpuTable())
	if xt := r.crossingsTable(); xt != "" {
		fmt.Fprintf(&b, "\n## cgo crossings per call (metaproxy.so)\n\nCounted by the ABI host over the measured phase of "+
			"the median run, divided by its calls: calls from C into Go with read data (OnDownstreamData, OnUpstreamData), "+
			"through the write filter (OnDownstreamWrite) and for the rest (connections, events); the plugin's writes, "+
			"calls from Go into C (DownstreamWrite, UpstreamWrite); and eventfd wake-ups of a worker whose queue was "+
			"empty. See bench/README.md.\n\n%s", xt)
	}
	fmt.Fprintf(&b, "\n## Targets (issues 5 and 16)\n\n%s", r.targets())
	if r.Plan.Rounds > 1 {
		fmt.Fprintf(&b, "\n## Noise: spread over the %d rounds\n\n%s", r.Plan.Rounds, r.noise())
	}
	if len(r.Micro) > 0 {
		fmt.Fprintf(&b, "\n## Core path (go test -run '^$' -bench CorePath -benchmem ./proxy)\n\n%s", microTable(r.Micro))
	}
	if sc := scaleMarkdown(r.Scale); sc != "" {
		fmt.Fprintf(&b, "\n## Scale: how cost grows\n\nFrom the scale benchmarks `make bench` runs before the load benchmark; "+
			"*largest ÷ smallest* is the value at the largest size over the value at the smallest. See bench/README.md.\n%s", sc)
	}
	if len(r.Profiles) > 0 {
		fmt.Fprintf(&b, "\n## Profiles\n\n%s", profilesMarkdown(r.Profiles))
	}
	if r.Chart != "" {
		fmt.Fprintf(&b, "\n## Chart\n\n![calls/s and p99 by case, and how cost grows](%s)\n", r.Chart)
	}
	return b.String()
}

// mainTable is the table of one protocol: a row per case.
func (r *Report) mainTable(protocol string) string {
	head := []string{"case", "workers", "calls/s", "p50 µs", "p99 µs", "max µs", "errors",
		"proxy CPU µs/call", "proxy peak RSS MiB", "calls/s ÷ direct", "calls/s ÷ HAProxy", "CPU/call ÷ HAProxy"}
	features := slices.ContainsFunc(r.Plan.Proxies, HasFeature)
	if features {
		head = append(head, "calls/s ÷ plain", "p99 ÷ plain", "CPU/call ÷ plain")
	}
	t := &table{head: head}
	var notes []string
	for _, c := range r.Plan.Cases(protocol) {
		notes = append(notes, r.notes(c)...)
		res, ok := r.Results.Median(c)
		if !ok {
			state := "not run"
			if first, _ := r.Results.First(c); first.Failed != "" {
				state = "FAILED"
			}
			t.add(c.Proxy, fmt.Sprint(c.Workers), state)
			continue
		}
		l := res.Result
		row := []string{c.Proxy, fmt.Sprint(c.Workers), fmt.Sprintf("%.0f", l.RPS),
			fmt.Sprint(l.P50us), fmt.Sprint(l.P99us), fmt.Sprint(l.MaxUs), fmt.Sprint(l.Errors)}
		if c.Proxy == Direct {
			row = append(row, "–", "–")
		} else {
			row = append(row, us(res.PerCall(res.ProxyCPU)), mib(res.ProxyPeakRSS))
		}
		direct, _ := r.Results.Median(Case{protocol, c.Workers, Direct})
		ha, _ := r.Results.Median(Case{protocol, c.Workers, HAProxy})
		row = append(row, ratio(Ratio(l.RPS, direct.Result.RPS)), ratio(Ratio(l.RPS, ha.Result.RPS)))
		if c.Proxy == Direct {
			row = append(row, "–")
		} else {
			row = append(row, ratio(Ratio(float64(res.PerCall(res.ProxyCPU)), float64(ha.PerCall(ha.ProxyCPU)))))
		}
		if features {
			row = append(row, r.featureRatios(c, res)...)
		}
		t.add(row...)
	}
	out := t.String()
	if features {
		out += "\n" + featureNote
	}
	if len(notes) > 0 {
		out += "\n" + strings.Join(notes, "")
	}
	return out
}

// featureNote explains the feature rows under a main table.
const featureNote = "Feature rows: **+mirror** copies every call (`request_mirror_policies`, 100 %) to a second server " +
	"and discards its answers; **+ringhash** balances over two servers with `lb_policy: RING_HASH` and " +
	"`hash_policy: [method]` (one method: every call hashes to the same server); **+health** adds circuit breakers, " +
	"outlier detection and a health check every second (the Dubbo heartbeat probe, TCP for Thrift); **+lrl** runs the local " +
	"rate limit filter (a condition checked, a token taken per call); **+rbac** runs the RBAC filter (five ALLOW policies, the " +
	"last one matching); **+observe** turns on istio_stats, an access log file (Istio's format) and tracing of every call " +
	"to an OTLP receiver. **÷ plain** is the ratio to the " +
	"same host without the feature (metaproxy or metaproxy.so) in the same run. The mirror server's CPU counts " +
	"as the server's, and it competes with the others for the same CPUs, so +mirror's calls/s falls by more than " +
	"its proxy CPU alone explains.\n"

// featureRatios are the ÷ plain cells of case c's median run res: calls/s,
// p99 and proxy CPU per call over those of the plain row of the same host.
// Rows without a feature, or whose plain row did not run, have none.
func (r *Report) featureRatios(c Case, res Result) []string {
	host, feature := SplitKind(c.Proxy)
	plain, ok := r.Results.Median(Case{c.Protocol, c.Workers, host})
	if feature == "" || !ok {
		return []string{"–", "–", "–"}
	}
	return []string{ratio(Ratio(res.Result.RPS, plain.Result.RPS)),
		ratio(Ratio(float64(res.Result.P99us), float64(plain.Result.P99us))),
		ratio(Ratio(float64(res.PerCall(res.ProxyCPU)), float64(plain.PerCall(plain.ProxyCPU))))}
}

// notes lists why runs of c did not run or failed, each reason once.
func (r *Report) notes(c Case) []string {
	var notes []string
	seen := map[string]bool{}
	for _, res := range r.Results {
		if res.Case != c || res.OK() {
			continue
		}
		state, why := "not run", res.Skipped
		if res.Failed != "" {
			state, why = "FAILED", firstLine(res.Failed)
		}
		note := fmt.Sprintf("- %s, %d workers: %s: %s\n", c.Proxy, c.Workers, state, why)
		if !seen[note] {
			seen[note] = true
			notes = append(notes, note)
		}
	}
	return notes
}

func (r *Report) cpuTable() string {
	t := &table{head: []string{"protocol", "workers", "case", "client", "server", "proxy", "other", "total", "machine busy"}}
	for _, p := range r.Plan.Protocols {
		for _, c := range r.Plan.Cases(p) {
			res, ok := r.Results.Median(c)
			if !ok {
				continue
			}
			busy := 0.0
			if res.Elapsed > 0 {
				busy = float64(res.MachineBusy) / float64(res.Elapsed) / float64(r.Env.CPUs) * 100
			}
			t.add(c.Protocol, fmt.Sprint(c.Workers), c.Proxy, us(res.PerCall(res.ClientCPU)), us(res.PerCall(res.ServerCPU)),
				us(res.PerCall(res.ProxyCPU)), us(res.PerCall(res.Other())), us(res.PerCall(res.MachineBusy)), fmt.Sprintf("%.0f%%", busy))
		}
	}
	return t.String()
}

// crossingsTable is a row per protocol and worker count with the cgo
// crossings per call of metaproxy.so's median run; "" when no run counted
// them (reports made before they were).
func (r *Report) crossingsTable() string {
	t := &table{head: []string{"protocol", "workers", "into Go (data)", "into Go (write)", "into Go (other)",
		"Go→C writes", "wake-ups", "total crossings"}}
	for _, p := range r.Plan.Protocols {
		for _, w := range r.Plan.Workers {
			res, ok := r.Results.Median(Case{p, w, ABIHost})
			if !ok || res.Crossings == nil || res.Calls() == 0 {
				continue
			}
			x := res.Crossings
			per := func(n int64) string { return fmt.Sprintf("%.2f", float64(n)/float64(res.Calls())) }
			t.add(p, fmt.Sprint(w), per(x.IntoGoData), per(x.IntoGoWrite), per(x.IntoGoOther),
				per(x.FromGoWrite), per(x.Wakeups), per(x.Total()))
		}
	}
	if len(t.rows) == 0 {
		return ""
	}
	return t.String()
}

// targets checks the goals of issues 5 and 16 case by case, on the median runs.
func (r *Report) targets() string {
	var b strings.Builder
	const rssLimit = 30 << 20
	for _, p := range r.Plan.Protocols {
		for _, w := range r.Plan.Workers {
			mp, ok := r.Results.Median(Case{p, w, Metaproxy})
			if !ok {
				continue
			}
			name := fmt.Sprintf("%s, %d workers", p, w)
			if ha, ok := r.Results.Median(Case{p, w, HAProxy}); ok {
				cpu := Ratio(float64(mp.PerCall(mp.ProxyCPU)), float64(ha.PerCall(ha.ProxyCPU)))
				fmt.Fprintf(&b, "- %s: metaproxy CPU/call %s µs vs HAProxy %s µs (%s, target ≤ 1.00×): %s\n",
					name, us(mp.PerCall(mp.ProxyCPU)), us(ha.PerCall(ha.ProxyCPU)), ratio(cpu), verdict(cpu <= 1))
				rps := Ratio(mp.Result.RPS, ha.Result.RPS)
				fmt.Fprintf(&b, "- %s: metaproxy %.0f calls/s vs HAProxy %.0f (%s, target ≥ 1.00×): %s\n",
					name, mp.Result.RPS, ha.Result.RPS, ratio(rps), verdict(rps >= 1))
			}
			if mo, ok := r.Results.Median(Case{p, w, MOSN}); ok {
				cpu := Ratio(float64(mp.PerCall(mp.ProxyCPU)), float64(mo.PerCall(mo.ProxyCPU)))
				fmt.Fprintf(&b, "- %s: metaproxy CPU/call %s µs vs MOSN %s µs (%s, target ≤ 0.33×): %s\n",
					name, us(mp.PerCall(mp.ProxyCPU)), us(mo.PerCall(mo.ProxyCPU)), ratio(cpu), verdict(cpu <= 0.33))
			}
			peak := int64(0)
			for _, run := range r.Results.Runs(Case{p, w, Metaproxy}) {
				peak = max(peak, run.ProxyPeakRSS)
			}
			fmt.Fprintf(&b, "- %s: metaproxy peak RSS %s MiB, highest of its runs (target ≤ 30): %s\n", name, mib(peak), verdict(peak <= rssLimit))
			if so, ok := r.Results.Median(Case{p, w, ABIHost}); ok {
				cpu := Ratio(float64(so.PerCall(so.ProxyCPU)), float64(mp.PerCall(mp.ProxyCPU)))
				fmt.Fprintf(&b, "- %s: metaproxy.so CPU/call %s µs vs standalone %s µs (%s, target ≤ 1.30×): %s\n",
					name, us(so.PerCall(so.ProxyCPU)), us(mp.PerCall(mp.ProxyCPU)), ratio(cpu), verdict(cpu <= 1.3))
				rps := Ratio(so.Result.RPS, mp.Result.RPS)
				fmt.Fprintf(&b, "- %s: metaproxy.so %.0f calls/s vs standalone %.0f (%s, target ≥ 0.90×): %s\n",
					name, so.Result.RPS, mp.Result.RPS, ratio(rps), verdict(rps >= 0.9))
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

// noise shows, for every case, the range of calls/s over its rounds and the
// spread, (max − min) / median, of calls/s, p99 and proxy CPU per call.
func (r *Report) noise() string {
	t := &table{head: []string{"protocol", "workers", "case", "runs", "calls/s min–max", "calls/s spread", "p99 spread", "proxy CPU/call spread"}}
	for _, p := range r.Plan.Protocols {
		for _, c := range r.Plan.Cases(p) {
			runs := r.Results.Runs(c)
			if len(runs) == 0 {
				continue
			}
			var rps, p99, cpu []float64
			for _, res := range runs {
				rps = append(rps, res.Result.RPS)
				p99 = append(p99, float64(res.Result.P99us))
				cpu = append(cpu, float64(res.PerCall(res.ProxyCPU)))
			}
			cpuSpread := spread(cpu)
			if c.Proxy == Direct {
				cpuSpread = "–"
			}
			t.add(c.Protocol, fmt.Sprint(c.Workers), c.Proxy, fmt.Sprint(len(runs)),
				fmt.Sprintf("%.0f–%.0f", slices.Min(rps), slices.Max(rps)), spread(rps), spread(p99), cpuSpread)
		}
	}
	return "Spread = (max − min) / median over the rounds of a case; the rounds of a worker count are " +
		"interleaved, so they are a minute or more apart.\n\n" + t.String()
}

// spread is (max − min) / median of xs, as a percentage.
func spread(xs []float64) string {
	if len(xs) < 2 {
		return "–"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
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
