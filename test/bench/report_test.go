package bench

import (
	"bytes"
	"encoding/json"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"
)

// fakeResult is a case that made calls calls in 1 s with the given proxy
// CPU per call and p99.
func fakeResult(c Case, calls int64, cpuPerCall time.Duration, p99us int64, rss int64) Result {
	r := Result{Case: c, ProxyPeakRSS: rss, ProxyRequests: -1}
	r.Result.OK = calls
	r.Result.RPS = float64(calls)
	r.Result.P99us = p99us
	r.ProxyCPU = cpuPerCall * time.Duration(calls)
	r.Elapsed = time.Second
	return r
}

func testReport() *Report {
	plan := Plan{Protocols: []string{"dubbo"}, Workers: []int{16}, Proxies: []string{Direct, HAProxy, Metaproxy, ABIHost}, Warmup: time.Second,
		Duration: 2 * time.Second, Threads: 2, Rounds: 3}
	mp := Case{"dubbo", 16, Metaproxy}
	rs := Results{
		fakeResult(Case{"dubbo", 16, Direct}, 10000, 0, 2000, 0),
		fakeResult(Case{"dubbo", 16, HAProxy}, 6000, 30*time.Microsecond, 4000, 8<<20),
		fakeResult(mp, 8000, 20*time.Microsecond, 2500, 20<<20),
		fakeResult(mp, 7500, 24*time.Microsecond, 3000, 40<<20),
		{Case: mp, Failed: "loadgen: exit status 1"},
		fakeResult(mp, 6000, 27*time.Microsecond, 3500, 10<<20),
		{Case: Case{"dubbo", 16, ABIHost}, Skipped: "the ABI host did not build: gcc: not found"},
		{Case: Case{"dubbo", 16, ABIHost}, Skipped: "the ABI host did not build: gcc: not found"},
	}
	return &Report{Env: Environment{CPUs: 2}, Plan: plan, Results: rs,
		Micro: []Micro{{"CorePathDubbo", 900, 0, 0}, {"CorePathThrift", 2500, 0, 1}},
		Chart: "latest.png"}
}

func TestMedian(t *testing.T) {
	rs := testReport().Results
	m, ok := rs.Median(Case{"dubbo", 16, Metaproxy})
	if !ok || m.Result.RPS != 7500 {
		t.Errorf("Median = %v, %v; want the 7500 calls/s run", m.Result.RPS, ok)
	}
	if n := len(rs.Runs(Case{"dubbo", 16, Metaproxy})); n != 3 {
		t.Errorf("Runs: %d, want the 3 that produced numbers", n)
	}
	if _, ok := rs.Median(Case{"dubbo", 16, ABIHost}); ok {
		t.Error("Median of a case that never ran")
	}
}

func TestMarkdown(t *testing.T) {
	md := testReport().Markdown()
	for _, want := range []string{
		// The median metaproxy run: 7500 calls/s, 24 µs, 40 MiB; 0.75× direct, 1.25× HAProxy, 0.80× HAProxy's CPU.
		"| metaproxy    |      16 |    7500 |",
		"|              24.0 |               40.0 |            0.75× |             1.25× |              0.80× |",
		"| metaproxy.so |      16 | not run |",
		"- metaproxy, 16 workers: FAILED: loadgen: exit status 1\n- metaproxy.so, 16 workers: not run: the ABI host did not build: gcc: not found\n\n",
		"metaproxy CPU/call 24.0 µs vs HAProxy 30.0 µs (0.80×, target ≤ 1.00×): **met**",
		"metaproxy 7500 calls/s vs HAProxy 6000 (1.25×, target ≥ 1.00×): **met**",
		"metaproxy peak RSS 40.0 MiB, highest of its runs (target ≤ 30): **missed**",
		"core path CorePathDubbo: 900 ns/op (target ≤ 2000), 0 allocs/op (target 0): **met**",
		"core path CorePathThrift: 2500 ns/op (target ≤ 2000), 1 allocs/op (target 0): **missed**",
		// 6000–8000 calls/s: 27 % of 7500; p99 1000/3000 µs; CPU 7/24 µs.
		"| dubbo    |      16 | metaproxy |    3 |       6000–8000 |            27% |        33% |                   29% |",
		"![calls/s and p99 by case, and how cost grows](latest.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestChartIsAPNG(t *testing.T) {
	r := testReport()
	var b bytes.Buffer
	if err := Chart(&b, r.Results, r.Plan, nil); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Dx(); got != chartW {
		t.Errorf("width %d, want %d", got, chartW)
	}
	// The metaproxy bar of the calls/s panel is drawn in its color.
	found := false
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y && !found; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := kindColor(Metaproxy)
			if r>>8 == uint32(c.R) && g>>8 == uint32(c.G) && bl>>8 == uint32(c.B) {
				found = true
				break
			}
		}
	}
	if !found {
		t.Error("no pixel in metaproxy's color")
	}
}

// TestFeatureRows: a feature row shows its ratios to the plain row of its
// host; the plain rows and a feature row whose plain row did not run show
// none.
func TestFeatureRows(t *testing.T) {
	r := testReport()
	mirror, ring := Metaproxy+"+"+FeatureMirror, Metaproxy+"+"+FeatureRingHash
	soMirror := ABIHost + "+" + FeatureMirror
	r.Plan.Proxies = []string{Direct, HAProxy, Metaproxy, mirror, ring, ABIHost, soMirror}
	r.Results = append(r.Results,
		fakeResult(Case{"dubbo", 16, mirror}, 6000, 36*time.Microsecond, 4500, 22<<20),
		fakeResult(Case{"dubbo", 16, ring}, 7200, 25*time.Microsecond, 3000, 20<<20),
		fakeResult(Case{"dubbo", 16, soMirror}, 5000, 40*time.Microsecond, 5000, 30<<20))
	md := r.Markdown()
	for _, want := range []string{
		"calls/s ÷ plain | p99 ÷ plain | CPU/call ÷ plain |",
		// 7500 calls/s, p99 3000 µs, 24 µs/call plain: 0.80×, 1.50×, 1.50×.
		"| metaproxy+mirror    |      16 |    6000 |",
		"|           0.80× |       1.50× |            1.50× |\n| metaproxy+ringhash ",
		"|           0.96× |       1.00× |            1.04× |\n| metaproxy.so ",
		// The plain metaproxy row, and metaproxy.so+mirror (metaproxy.so did not run).
		"|              0.80× |               – |           – |                – |\n| metaproxy+mirror ",
		"|               – |           – |                – |\n\nFeature rows:",
		"| dubbo    |      16 |  metaproxy+ringhash |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	var b bytes.Buffer
	if err := Chart(&b, r.Results, r.Plan, nil); err != nil {
		t.Fatal(err)
	}
}

// TestReportCrossings: the crossings section shows metaproxy.so's median
// run per call, and a report without counted crossings (one rendered from
// an older latest.json) has none.
func TestReportCrossings(t *testing.T) {
	r := testReport()
	if md := r.Markdown(); strings.Contains(md, "cgo crossings") {
		t.Errorf("a report without crossings has the section:\n%s", md)
	}
	so := Case{"dubbo", 16, ABIHost}
	for _, x := range []struct {
		calls int64
		c     *Crossings
	}{
		{4000, &Crossings{IntoGoData: 40000}},
		{5000, &Crossings{IntoGoData: 10000, IntoGoWrite: 5000, IntoGoOther: 50, FromGoWrite: 10000, Wakeups: 7500}},
		{6000, nil},
	} {
		res := fakeResult(so, x.calls, 30*time.Microsecond, 3000, 30<<20)
		res.Crossings = x.c
		r.Results = append(r.Results, res)
	}
	md := r.Markdown()
	for _, want := range []string{
		"\n## cgo crossings per call (metaproxy.so)\n",
		// The median run, 5000 calls: 2, 1, 0.01, 2 and 1.5 per call; 6.51 in all.
		"| dubbo    |      16 |           2.00 |            1.00 |            0.01 |        2.00 |     1.50 |            6.51 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestReportOldJSON: a latest.json written before crossings were counted
// still loads and renders, without the section; a new one keeps them.
func TestReportOldJSON(t *testing.T) {
	old := `{"Plan":{"Protocols":["dubbo"],"Workers":[16],"Proxies":["metaproxy.so"],"Rounds":1},
		"Results":[{"Protocol":"dubbo","Workers":16,"Proxy":"metaproxy.so","Round":1,
		"Result":{"OK":100,"RPS":100},"ProxyCPU":1000,"Elapsed":1000000000,"ProxyRequests":-1}]}`
	var rep Report
	if err := json.Unmarshal([]byte(old), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Crossings != nil {
		t.Errorf("crossings %+v from a report without them", rep.Results[0].Crossings)
	}
	if md := rep.Markdown(); strings.Contains(md, "cgo crossings") {
		t.Errorf("an old report has the crossings section:\n%s", md)
	}
	rep.Results[0].Crossings = &Crossings{IntoGoData: 200, FromGoWrite: 200}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if c := back.Results[0].Crossings; c == nil || *c != *rep.Results[0].Crossings {
		t.Errorf("crossings after a round trip: %+v", c)
	}
	if md := back.Markdown(); !strings.Contains(md, "## cgo crossings per call (metaproxy.so)") {
		t.Errorf("no crossings section:\n%s", md)
	}
}

func TestParseCrossings(t *testing.T) {
	before := map[string]int64{"downstream_open": 16, "into_go_data": 10, "into_go_write": 5, "into_go_other": 40, "from_go_write": 10, "wakeups": 3}
	after := map[string]int64{"downstream_open": 16, "into_go_data": 30, "into_go_write": 15, "into_go_other": 41, "from_go_write": 30, "wakeups": 13}
	got := CrossingsBetween(before, after)
	want := Crossings{IntoGoData: 20, IntoGoWrite: 10, IntoGoOther: 1, FromGoWrite: 20, Wakeups: 10}
	if got == nil || *got != want || got.Total() != 61 {
		t.Errorf("CrossingsBetween = %+v, want %+v (total 61)", got, want)
	}
	// A host without the counters (an older build) counts none.
	if got := CrossingsBetween(map[string]int64{"downstream_open": 1}, map[string]int64{"downstream_open": 2}); got != nil {
		t.Errorf("CrossingsBetween without the counters = %+v, want nil", got)
	}
}

// TestChartColorsAndLegend: every proxy kind has a color of its own, and a
// legend of every kind wraps onto rows inside the chart's width.
func TestChartColorsAndLegend(t *testing.T) {
	seen := map[color.RGBA]string{}
	for _, k := range Proxies {
		c := kindColor(k)
		if other, dup := seen[c]; dup {
			t.Errorf("%s and %s share the color %v", k, other, c)
		}
		seen[c] = k
	}
	if h := legendHeight(Proxies); h <= legendH {
		t.Errorf("a legend of all %d kinds is %d high: it does not wrap (one row is %d)", len(Proxies), h, legendH)
	}
	if h := legendHeight(Proxies[:2]); h != legendH {
		t.Errorf("a legend of two kinds is %d high, want one row (%d)", h, legendH)
	}
}
