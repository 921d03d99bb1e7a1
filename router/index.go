package router

import (
	"maps"
	"slices"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// The route index. Aeraki generates a route per service and method, each an
// exact match on interface and method: a table of thousands of routes that
// a scan would walk for every request. The index finds the routes a request
// can match by the values of the table's two most common exact-match keys,
// then tries those, and the routes the index cannot place, in table order:
// the first route that matches still wins, whatever the index.

// minIndexed is the table size from which Match uses an index: a scan of
// a dozen two-matcher routes already costs about four index lookups.
const minIndexed = 8

type index struct {
	k1, k2 string                // the index keys (k2 "" when the table has one)
	both   map[[2]string][]int32 // routes exact on k1 and k2, by their values
	first  map[string][]int32    // routes exact on k1 only
	rest   []int32               // the others
}

// exactOn returns the value route r requires for key k (lower case) with
// an exact, case-sensitive, non-inverted matcher, if it has one.
func exactOn(r *Route, k string) (string, bool) {
	for i := range r.Matchers {
		m := &r.Matchers[i]
		if m.Kind == Exact && !m.Invert && !m.IgnoreCase && !m.TreatMissingAsEmpty && strings.EqualFold(m.Key, k) {
			return m.Value, true
		}
	}
	return "", false
}

// buildIndex returns the index of routes, or nil when the table is small
// or has no key worth indexing.
func buildIndex(routes []*Route) *index {
	if len(routes) < minIndexed {
		return nil
	}
	k1 := commonKey(routes, nil, "")
	if k1 == "" {
		return nil
	}
	k2 := commonKey(routes, func(r *Route) bool { _, ok := exactOn(r, k1); return ok }, k1)
	x := &index{k1: k1, k2: k2, both: map[[2]string][]int32{}, first: map[string][]int32{}}
	for i, r := range routes {
		v1, ok1 := exactOn(r, k1)
		v2, ok2 := "", false
		if k2 != "" {
			v2, ok2 = exactOn(r, k2)
		}
		switch {
		case ok1 && ok2:
			x.both[[2]string{v1, v2}] = append(x.both[[2]string{v1, v2}], int32(i))
		case ok1:
			x.first[v1] = append(x.first[v1], int32(i))
		default:
			x.rest = append(x.rest, int32(i))
		}
	}
	return x
}

// commonKey returns the key (lower case) with an exact matcher in the most
// routes that pass keep (all when nil), other than not; "" if none is in
// at least a quarter of them.
func commonKey(routes []*Route, keep func(*Route) bool, not string) string {
	counts := map[string]int{}
	n := 0
	for _, r := range routes {
		if keep != nil && !keep(r) {
			continue
		}
		n++
		seen := map[string]bool{}
		for i := range r.Matchers {
			m := &r.Matchers[i]
			k := strings.ToLower(m.Key)
			if k == not || seen[k] {
				continue
			}
			if _, ok := exactOn(r, k); ok {
				seen[k] = true
				counts[k]++
			}
		}
	}
	best, most := "", 0
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		if counts[k] > most {
			best, most = k, counts[k]
		}
	}
	if most*4 < n || most < 2 {
		return ""
	}
	return best
}

// match returns the first route of routes matching md, trying only the
// candidates the index gives, in table order.
func (x *index) match(routes []*Route, md *codec.Metadata) *Route {
	var a, b []int32
	if v1, ok := md.Get(x.k1); ok {
		b = x.first[v1]
		if x.k2 != "" {
			if v2, ok := md.Get(x.k2); ok {
				a = x.both[[2]string{v1, v2}]
			}
		}
	}
	c := x.rest
	for len(a)+len(b)+len(c) > 0 {
		// The smallest position of the three lists' heads.
		i, list := int32(-1), 0
		for n, l := range [3][]int32{a, b, c} {
			if len(l) > 0 && (i < 0 || l[0] < i) {
				i, list = l[0], n
			}
		}
		switch list {
		case 0:
			a = a[1:]
		case 1:
			b = b[1:]
		default:
			c = c[1:]
		}
		if r := routes[i]; r.matches(md) {
			return r
		}
	}
	return nil
}
