package router

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/metaproxy/metaproxy/codec"
)

// scan is the reference: the first route in order that matches.
func scan(t *Table, md *codec.Metadata) *Route {
	for _, r := range t.Routes {
		if r.matches(md) {
			return r
		}
	}
	return nil
}

// randomRoute draws a route over a few keys and values with every matcher
// kind, inverted and case-blind ones included.
func randomRoute(rnd *rand.Rand, i int) *Route {
	keys := []string{"interface", "method", "version", "Method", "group"}
	vals := []string{"a", "b", "c", "A", ""}
	r := &Route{Name: fmt.Sprint(i), Cluster: "c"}
	// Most routes look like Aeraki's (exact interface, then method), so
	// that the tables get indexed; the rest are anything.
	if rnd.IntN(10) < 6 {
		r.Matchers = append(r.Matchers, Matcher{Key: "interface", Kind: Exact, Value: vals[rnd.IntN(3)]})
		if rnd.IntN(2) == 0 {
			r.Matchers = append(r.Matchers, Matcher{Key: "method", Kind: Exact, Value: vals[rnd.IntN(3)]})
		}
	}
	for range rnd.IntN(3) {
		m := Matcher{Key: keys[rnd.IntN(len(keys))], Value: vals[rnd.IntN(len(vals))]}
		switch rnd.IntN(8) {
		case 0:
			m.Kind = Prefix
		case 1:
			m.Kind, m.Re = Regex, regexp.MustCompile("^[ab]$")
		case 2:
			m.Kind, m.Present = Present, rnd.IntN(2) == 0
		default:
			m.Kind = Exact
		}
		m.Invert = rnd.IntN(6) == 0
		m.IgnoreCase = rnd.IntN(6) == 0
		m.TreatMissingAsEmpty = rnd.IntN(8) == 0
		r.Matchers = append(r.Matchers, m)
	}
	return r
}

// The index finds, for every request, the route a scan in order finds.
func TestIndexAgreesWithScan(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	indexed, both := 0, 0
	for table := range 300 {
		var routes []*Route
		for i := range minIndexed + rnd.IntN(60) {
			routes = append(routes, randomRoute(rnd, i))
		}
		tb, err := NewTable(fmt.Sprint(table), routes)
		if err != nil {
			t.Fatal(err)
		}
		if tb.index != nil {
			indexed++
			if tb.index.k2 != "" {
				both++
			}
		}
		for range 200 {
			var md codec.Metadata
			for _, k := range []string{"interface", "method", "version", "group"} {
				if rnd.IntN(4) > 0 {
					md.Set(k, []string{"a", "b", "c", "A", ""}[rnd.IntN(5)])
				}
			}
			if got, want := tb.Match(&md), scan(tb, &md); got != want {
				t.Fatalf("table %d, request %v: the index found %v, a scan %v", table, md.All(), got, want)
			}
		}
	}
	if indexed < 200 || both < 100 {
		t.Fatalf("%d of 300 random tables were indexed, %d on two keys: the test does not exercise the index", indexed, both)
	}
}

// aerakiTable is n routes as Aeraki generates them (an exact match on
// interface and method each), then a prefix and a regex route.
func aerakiTable(b testing.TB, n int) *Table {
	var routes []*Route
	for i := range n {
		routes = append(routes, &Route{Name: fmt.Sprint(i), Cluster: "c", Matchers: Matchers{
			{Key: "interface", Kind: Exact, Value: fmt.Sprintf("com.example.Service%d", i/10)},
			{Key: "method", Kind: Exact, Value: fmt.Sprintf("method%d", i%10)},
		}})
	}
	routes = append(routes,
		&Route{Name: "prefix", Cluster: "c", Matchers: Matchers{{Key: "interface", Kind: Prefix, Value: "org.other."}}},
		&Route{Name: "regex", Cluster: "c", Matchers: Matchers{{Key: "method", Kind: Regex, Re: regexp.MustCompile("^admin.*")}}})
	t, err := NewTable("bench", routes)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func BenchmarkMatchScale(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		t := aerakiTable(b, n)
		last := n - 1
		for _, c := range []struct {
			name string
			kv   []string
			want string
		}{
			{"exact-last", []string{"interface", fmt.Sprintf("com.example.Service%d", last/10), "method", fmt.Sprintf("method%d", last%10)}, fmt.Sprint(last)},
			{"regex-after-all", []string{"interface", "com.example.Nope", "method", "adminReset"}, "regex"},
		} {
			var md codec.Metadata
			for i := 0; i < len(c.kv); i += 2 {
				md.Set(c.kv[i], c.kv[i+1])
			}
			for _, mode := range []string{"index", "scan"} {
				tb := t
				if mode == "scan" { // the baseline: the same table without its index
					tb = &Table{Name: t.Name, Routes: t.Routes}
				}
				b.Run(fmt.Sprintf("routes=%d/%s/%s", n, c.name, mode), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if r := tb.Match(&md); r == nil || r.Name != c.want {
							b.Fatalf("matched %v, want %s", r, c.want)
						}
					}
				})
			}
		}
	}
}
