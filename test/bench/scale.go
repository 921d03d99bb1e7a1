package bench

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Bench is one result line of `go test -bench` output: the benchmark's
// name (without "Benchmark" and the -GOMAXPROCS suffix) and every value it
// reported, by unit (ns/op, allocs/op, and custom ones like KiB/cluster).
type Bench struct {
	Name    string
	Metrics []Metric
}

// Metric is one value of a Bench.
type Metric struct {
	Value float64
	Unit  string
}

// Get returns the value b reported in unit.
func (b Bench) Get(unit string) (float64, bool) {
	for _, m := range b.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// ParseBench reads every result line of `go test -bench` output; other
// lines are ignored.
func ParseBench(out string) []Bench {
	var bs []Bench
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil { // iterations
			continue
		}
		b := Bench{Name: benchName(f[0])}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.Metrics = append(b.Metrics, Metric{v, f[i+1]})
		}
		bs = append(bs, b)
	}
	return bs
}

func benchName(s string) string {
	s = strings.TrimPrefix(s, "Benchmark")
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			return s[:i]
		}
	}
	return s
}

// series is one thing measured at several sizes: a row of a scale table
// and a group of the chart's growth panel.
type series struct {
	label  string
	sizes  []int
	values []float64 // by sizes
}

// growth is the value at the largest size over the value at the smallest.
func (s series) growth() float64 {
	if len(s.values) < 2 || s.values[0] <= 0 {
		return 0
	}
	return s.values[len(s.values)-1] / s.values[0]
}

// bySize gathers, for the lines of benchmark family (the name before the
// first '/'), the value in unit of each line whose name has a key=N
// element: one series per name with that element taken out, sizes sorted.
func bySize(bs []Bench, family, key, unit string) []series {
	var out []series
	index := map[string]int{}
	for _, b := range bs {
		parts := strings.Split(b.Name, "/")
		if parts[0] != family {
			continue
		}
		size, rest := -1, []string{}
		for _, p := range parts[1:] {
			if v, ok := strings.CutPrefix(p, key+"="); ok {
				if n, err := strconv.Atoi(v); err == nil {
					size = n
					continue
				}
			}
			rest = append(rest, p)
		}
		v, ok := b.Get(unit)
		if size < 0 || !ok {
			continue
		}
		label := strings.Join(rest, "/")
		i, seen := index[label]
		if !seen {
			i = len(out)
			index[label] = i
			out = append(out, series{label: label})
		}
		if j := slices.Index(out[i].sizes, size); j >= 0 {
			out[i].values[j] = v // a later run of the same benchmark
			continue
		}
		out[i].sizes = append(out[i].sizes, size)
		out[i].values = append(out[i].values, v)
	}
	for i := range out {
		sortSeries(&out[i])
	}
	return out
}

// byUnitSize gathers, from the line of benchmark name, the metrics whose
// unit is prefix+"@N": one series (named label) over the N.
func byUnitSize(bs []Bench, name, prefix, label string) (series, bool) {
	s := series{label: label}
	for _, b := range bs {
		if b.Name != name {
			continue
		}
		for _, m := range b.Metrics {
			if v, ok := strings.CutPrefix(m.Unit, prefix+"@"); ok {
				if n, err := strconv.Atoi(v); err == nil {
					s.sizes = append(s.sizes, n)
					s.values = append(s.values, m.Value)
				}
			}
		}
	}
	sortSeries(&s)
	return s, len(s.sizes) > 0
}

func sortSeries(s *series) {
	idx := make([]int, len(s.sizes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return s.sizes[a] - s.sizes[b] })
	sizes, values := make([]int, len(idx)), make([]float64, len(idx))
	for i, j := range idx {
		sizes[i], values[i] = s.sizes[j], s.values[j]
	}
	s.sizes, s.values = sizes, values
}

// seriesTable renders series that share their sizes: a column per size
// (in the given unit, formatted by f) and the growth from the smallest
// size to the largest.
func seriesTable(first, sizeName string, ss []series, f func(float64) string) string {
	if len(ss) == 0 {
		return ""
	}
	head := []string{first}
	for _, n := range ss[0].sizes {
		head = append(head, fmt.Sprintf("%s %s", thousands(n), sizeName))
	}
	head = append(head, "largest ÷ smallest")
	t := &table{head: head}
	for _, s := range ss {
		row := []string{s.label}
		for _, v := range s.values {
			row = append(row, f(v))
		}
		row = append(row, fmt.Sprintf("%.2f×", s.growth()))
		t.add(row...)
	}
	return t.String()
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func decimals(prec int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
}

// connSeries are BenchmarkConnectionScale's rows: proxy CPU per call and
// p99 at each connection count, standalone and .so.
func connSeries(bs []Bench) (cpu, p99 []series) {
	for _, h := range []struct{ metric, label string }{{"", "metaproxy"}, {"so-", "metaproxy.so"}} {
		if s, ok := byUnitSize(bs, "ConnectionScale", h.metric+"cpu-µs/call", h.label); ok {
			cpu = append(cpu, s)
		}
		if s, ok := byUnitSize(bs, "ConnectionScale", h.metric+"p99-µs", h.label); ok {
			p99 = append(p99, s)
		}
	}
	return cpu, p99
}

// scaleMarkdown is the Scale section: how cost grows with routes,
// endpoints and connections, from the scale benchmarks' output.
func scaleMarkdown(bs []Bench) string {
	var b strings.Builder
	section := func(title, intro, body string) {
		if body != "" {
			fmt.Fprintf(&b, "\n### %s\n\n%s\n\n%s", title, intro, body)
		}
	}
	section("Route matching (`go test -bench MatchScale ./router`), ns per match",
		"Exact interface+method routes as Aeraki generates them, plus a prefix and a regex route after them. "+
			"*index* is the table as the router builds it, *scan* the same routes matched one by one (the baseline). "+
			"*exact-last* matches the last exact route, *regex-after-all* falls through every exact route to the regex one.",
		seriesTable("case", "routes", bySize(bs, "MatchScale", "routes", "ns/op"), decimals(0)))
	section("Endpoint pick (`go test -bench ScalePick ./cluster`), ns per pick",
		"One Pick per call by each load-balancing policy.",
		seriesTable("policy", "endpoints", bySize(bs, "ScalePick", "endpoints", "ns/op"), decimals(0)))
	update := bySize(bs, "ScaleUpdate", "endpoints", "ns/op")
	for i := range update {
		for j := range update[i].values {
			update[i].values[j] /= 1000
		}
	}
	section("Endpoint update (`go test -bench ScaleUpdate ./cluster`), µs per update",
		"One endpoint replaced: the host set and the balancer (ring, Maglev table, scheduler) rebuilt.",
		seriesTable("policy", "endpoints", update, decimals(1)))
	section("Cluster memory (`go test -bench ScaleUpdate ./cluster`), KiB per cluster",
		"The Go heap one cluster of that many endpoints holds.",
		seriesTable("policy", "endpoints", bySize(bs, "ScaleUpdate", "endpoints", "KiB/cluster"), decimals(0)))
	cpu, p99 := connSeries(bs)
	section("Connections (`BenchmarkConnectionScale`), proxy CPU µs per call",
		"One total rate of Apache Thrift calls spread over that many client connections (see bench/README.md).",
		seriesTable("proxy", "connections", cpu, decimals(1)))
	section("Connections (`BenchmarkConnectionScale`), p99 µs", "The same runs' p99 latency.",
		seriesTable("proxy", "connections", p99, decimals(0)))
	for _, x := range bs {
		if x.Name != "IdleConnections" {
			continue
		}
		rss, _ := x.Get("RSS-B/conn")
		heap, _ := x.Get("heap-B/conn")
		t := &table{head: []string{"proxy", "RSS B/connection", "Go heap B/connection"}}
		t.add("metaproxy", decimals(0)(rss), decimals(0)(heap))
		section("Idle connections (`BenchmarkIdleConnections`)",
			"10,000 downstream connections that each made one call, then sit idle: the standalone proxy's memory per connection.",
			t.String())
	}
	return b.String()
}

// growthSeries are the series the chart's growth panel shows, with short
// labels.
func growthSeries(bs []Bench) []series {
	short := strings.NewReplacer("exact-last", "exact", "regex-after-all", "regex", "/index", " idx", "/scan", " scan",
		"ROUND_ROBIN", "rr", "LEAST_REQUEST", "lr", "RANDOM", "random", "RING_HASH", "ring", "MAGLEV", "maglev", "_weighted", " w")
	var out []series
	for _, s := range bySize(bs, "MatchScale", "routes", "ns/op") {
		s.label = short.Replace(s.label)
		out = append(out, s)
	}
	for _, s := range bySize(bs, "ScalePick", "endpoints", "ns/op") {
		s.label = short.Replace(s.label)
		out = append(out, s)
	}
	cpu, _ := connSeries(bs)
	for _, s := range cpu {
		s.label = strings.Replace(s.label, "metaproxy", "conns", 1)
		out = append(out, s)
	}
	return out
}
