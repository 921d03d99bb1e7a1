package bench

import (
	"bytes"
	"image/png"
	"strings"
	"testing"
)

// scaleOutput is `go test -bench` output of the scale benchmarks as make
// bench collects it (lines of real runs; other lines are ignored).
const scaleOutput = `goos: linux
BenchmarkMatchScale/routes=10/exact-last/index-2         	    2000	        60.60 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatchScale/routes=10/exact-last/scan-2          	    2000	       204.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatchScale/routes=1000/exact-last/index-2       	    2000	       251.5 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatchScale/routes=1000/exact-last/scan-2        	    2000	     22765 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatchScale/routes=10000/exact-last/index-2      	    2000	        66.18 ns/op	       0 B/op	       0 allocs/op
BenchmarkMatchScale/routes=10000/exact-last/scan-2       	    2000	    273034 ns/op	       0 B/op	       0 allocs/op
PASS
BenchmarkScalePick/endpoints=10/MAGLEV-2 	     200	        25.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkScalePick/endpoints=10000/MAGLEV-2 	     200	        30.00 ns/op	       0 B/op	       0 allocs/op
BenchmarkScaleUpdate/endpoints=10/RING_HASH-2                	      20	      4007 ns/op	         3.078 KiB/cluster	    2226 B/op	      33 allocs/op
BenchmarkScaleUpdate/endpoints=10000/RING_HASH-2                	      20	      4007000 ns/op	         3078 KiB/cluster	    2226 B/op	      33 allocs/op
BenchmarkIdleConnections-2   	       1	12000000000 ns/op	      2400 RSS-B/conn	      1500 heap-B/conn
BenchmarkConnectionScale-2   	       1	90000000000 ns/op	      71.00 cpu-µs/call@1	     75.00 cpu-µs/call@100	     75.00 cpu-µs/call@10000	       398.0 p99-µs@1	       540.0 p99-µs@100	       499.0 p99-µs@10000	        67.00 so-cpu-µs/call@1	        71.00 so-cpu-µs/call@100	        64.00 so-cpu-µs/call@10000	       481.0 so-p99-µs@1	       519.0 so-p99-µs@100	       674.0 so-p99-µs@10000
`

func TestScaleSection(t *testing.T) {
	bs := ParseBench(scaleOutput)
	if len(bs) != 12 {
		t.Fatalf("%d result lines, want 12", len(bs))
	}
	if v, ok := bs[0].Get("ns/op"); !ok || v != 60.6 || bs[0].Name != "MatchScale/routes=10/exact-last/index" {
		t.Fatalf("first line: %+v", bs[0])
	}
	md := scaleMarkdown(bs)
	for _, want := range []string{
		"| case             | 10 routes | 1,000 routes | 10,000 routes | largest ÷ smallest |",
		"| exact-last/index |        61 |          252 |            66 |              1.09× |",
		"| exact-last/scan  |       204 |        22765 |        273034 |           1335.13× |",
		"| MAGLEV | 25 | 30 | 1.20× |",
		"| RING_HASH | 4.0 | 4007.0 | 1000.00× |", // µs per update
		"| RING_HASH | 3 | 3078 | 1000.00× |",     // KiB per cluster
		"| metaproxy    |         71.0 |           75.0 |             75.0 |              1.06× |",
		"| metaproxy.so |        481 |          519 |            674 |              1.40× |",
		"| metaproxy | 2400 | 1500 |",
	} {
		if !strings.Contains(squeeze(md), squeeze(want)) {
			t.Errorf("scale section lacks %q:\n%s", want, md)
		}
	}
	r := testReport()
	r.Scale = bs
	if !strings.Contains(r.Markdown(), "## Scale: how cost grows") {
		t.Error("the report has no Scale section")
	}
	var b bytes.Buffer
	if err := Chart(&b, r.Results, r.Plan, bs); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := img.Bounds().Dy(), legendHeight(r.Plan.Proxies)+3*(panelH+axisH); got != want {
		t.Errorf("chart height %d, want %d (three panels)", got, want)
	}
	if g := growthSeries(bs); len(g) != 5 || g[0].label != "exact idx" || g[3].label != "conns" || g[4].label != "conns.so" {
		t.Errorf("growth series %+v", g)
	}
}

// squeeze drops the padding of markdown table cells.
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}
