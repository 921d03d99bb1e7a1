// Package router matches requests to routes. A Table is compiled once from
// the route configuration and is immutable: a new configuration (from RDS,
// say) is a new Table swapped in atomically while traffic flows.
package router

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"

	"github.com/metaproxy/metaproxy/codec"
)

// Table is a compiled route configuration. Routes are tried in order; the
// first whose matchers all match wins.
type Table struct {
	Name   string
	Routes []*Route
}

// Route is one compiled route.
type Route struct {
	Name     string
	Matchers []Matcher
	// Cluster is the target when the route has a single cluster.
	Cluster string
	// Weighted is the target when the route splits traffic.
	Weighted []WeightedCluster
	// RequestMutation is added to requests as headers (Aeraki's
	// request_mutation); ResponseMutation likewise to responses.
	RequestMutation  []codec.KV
	ResponseMutation []codec.KV
	// HashPolicy names the metadata keys of the load-balancing hash key.
	HashPolicy []string
	// Mirrors are clusters that get a copy of each request.
	Mirrors []Mirror
	total   uint64
}

// WeightedCluster is one target of a traffic split.
type WeightedCluster struct {
	Name   string
	Weight uint32
}

// Mirror sends a copy of a share of requests to a cluster.
type Mirror struct {
	Cluster string
	// Percent of requests mirrored, in millionths (1e6 = all).
	Millionths uint32
}

// Match returns the first route matching md, or nil.
func (t *Table) Match(md *codec.Metadata) *Route {
	if t == nil {
		return nil
	}
	for _, r := range t.Routes {
		if r.matches(md) {
			return r
		}
	}
	return nil
}

func (r *Route) matches(md *codec.Metadata) bool {
	for i := range r.Matchers {
		if !r.Matchers[i].Match(md) {
			return false
		}
	}
	return true
}

// PickCluster returns the route's cluster, choosing by weight when the route
// splits traffic.
func (r *Route) PickCluster() string {
	if len(r.Weighted) == 0 {
		return r.Cluster
	}
	n := rand.Uint64N(r.total)
	for _, w := range r.Weighted {
		if n < uint64(w.Weight) {
			return w.Name
		}
		n -= uint64(w.Weight)
	}
	return r.Weighted[len(r.Weighted)-1].Name
}

// MatchKind is how a Matcher compares a metadata value.
type MatchKind uint8

// Matcher kinds (Envoy's HeaderMatcher).
const (
	Exact MatchKind = iota
	Prefix
	Suffix
	Contains
	Regex
	Present
	Range
)

// Matcher tests one metadata key.
type Matcher struct {
	Key        string
	Kind       MatchKind
	Value      string
	IgnoreCase bool
	Re         *regexp.Regexp
	// Present is the wanted presence for Kind Present.
	Present bool
	// Start and End bound the integer value for Kind Range: [Start, End).
	Start, End int64
	// Invert negates the result (Envoy's invert_match).
	Invert bool
	// TreatMissingAsEmpty matches a missing key as "" (Envoy's
	// treat_missing_header_as_empty).
	TreatMissingAsEmpty bool
}

// Match reports whether md satisfies m.
func (m *Matcher) Match(md *codec.Metadata) bool {
	v, ok := md.Get(m.Key)
	if !ok && m.TreatMissingAsEmpty {
		v, ok = "", true
	}
	var res bool
	switch {
	case m.Kind == Present:
		res = ok == m.Present
	case !ok:
		// A missing key never matches, even inverted (Envoy semantics).
		return false
	default:
		res = m.matchValue(v)
	}
	return res != m.Invert
}

func (m *Matcher) matchValue(v string) bool {
	switch m.Kind {
	case Exact:
		if m.IgnoreCase {
			return strings.EqualFold(v, m.Value)
		}
		return v == m.Value
	case Prefix:
		if m.IgnoreCase {
			return len(v) >= len(m.Value) && strings.EqualFold(v[:len(m.Value)], m.Value)
		}
		return strings.HasPrefix(v, m.Value)
	case Suffix:
		if m.IgnoreCase {
			return len(v) >= len(m.Value) && strings.EqualFold(v[len(v)-len(m.Value):], m.Value)
		}
		return strings.HasSuffix(v, m.Value)
	case Contains:
		if m.IgnoreCase {
			return strings.Contains(strings.ToLower(v), strings.ToLower(m.Value))
		}
		return strings.Contains(v, m.Value)
	case Regex:
		return m.Re.MatchString(v)
	case Range:
		var n int64
		neg := false
		s := v
		if strings.HasPrefix(s, "-") {
			neg, s = true, s[1:]
		}
		if s == "" || len(s) > 18 {
			return false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
			n = n*10 + int64(s[i]-'0')
		}
		if neg {
			n = -n
		}
		return n >= m.Start && n < m.End
	}
	return false
}

// Validate checks a table built by hand or by a converter.
func (t *Table) Validate() error {
	for i, r := range t.Routes {
		where := fmt.Sprintf("route %d (%q)", i, r.Name)
		if r.Cluster == "" && len(r.Weighted) == 0 {
			return fmt.Errorf("%s: no cluster", where)
		}
		r.total = 0
		for _, w := range r.Weighted {
			if w.Name == "" {
				return fmt.Errorf("%s: weighted cluster without a name", where)
			}
			r.total += uint64(w.Weight)
		}
		if len(r.Weighted) > 0 && r.total == 0 {
			return fmt.Errorf("%s: weighted clusters have a total weight of 0", where)
		}
		for _, m := range r.Matchers {
			if m.Key == "" {
				return fmt.Errorf("%s: matcher without a metadata name", where)
			}
			if m.Kind == Regex && m.Re == nil {
				return fmt.Errorf("%s: regex matcher %q without a regex", where, m.Key)
			}
		}
	}
	return nil
}

// Clusters returns every cluster name the table refers to.
func (t *Table) Clusters() []string {
	var out []string
	for _, r := range t.Routes {
		if r.Cluster != "" {
			out = append(out, r.Cluster)
		}
		for _, w := range r.Weighted {
			out = append(out, w.Name)
		}
		for _, m := range r.Mirrors {
			out = append(out, m.Cluster)
		}
	}
	return out
}
