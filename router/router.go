// Package router matches requests to routes. A Table is compiled once from
// the route configuration and is immutable: a new configuration (from RDS,
// say) is a new Table swapped in atomically while traffic flows.
package router

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/codec"
)

// Table is a compiled route configuration. Routes are tried in order; the
// first whose matchers all match wins.
//
// A table that serves requests comes from Compile or NewTable, which
// prepare what the request path reads (the weighted clusters' total
// weight); a table is not modified afterwards, so any number of goroutines
// may match against it.
type Table struct {
	Name   string
	Routes []*Route
	index  *index // built by NewTable for large tables (index.go)
}

// NewTable prepares routes for serving and validates them (see
// Table.Validate). It takes ownership of routes and of every Route: none
// may be modified afterwards. Tables built by hand, in tests say, use it
// as Compile does; a literal Table works only if no route has weighted
// clusters.
func NewTable(name string, routes []*Route) (*Table, error) {
	for _, r := range routes {
		if r == nil {
			continue // Validate reports it
		}
		r.total = 0
		for _, w := range r.Weighted {
			r.total += uint64(w.Weight)
		}
	}
	t := &Table{Name: name, Routes: routes}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	t.index = buildIndex(routes)
	return t, nil
}

// Route is one compiled route.
type Route struct {
	Name     string
	Matchers Matchers
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
	// Timeout is the deadline of the whole request, retries included; it
	// overrides the listener's request timeout. Zero: the route sets no
	// limit and the listener's applies.
	Timeout time.Duration
	// Retry says when a failed request is sent again; the zero value never
	// retries.
	Retry RetryPolicy

	// total is the sum of the weights of Weighted, set by NewTable.
	total uint64
}

// MaxRetries is the largest RetryPolicy.NumRetries.
const MaxRetries = api.MaxRetries

// RetryPolicy is a route's retry policy (Envoy's RetryPolicy).
type RetryPolicy struct {
	// NumRetries is the number of attempts after the first.
	NumRetries int
	// PerTryTimeout bounds each attempt; zero: only the request's deadline
	// does.
	PerTryTimeout time.Duration
	// On is the set of failures that are retried.
	On RetryOn
}

// Enabled reports whether the policy retries anything.
func (p *RetryPolicy) Enabled() bool { return p.NumRetries > 0 && p.On != 0 }

// RetryOn is a set of retryable failures (the retry_on conditions).
type RetryOn uint8

// Retry conditions.
const (
	// RetryConnectFailure: no connection to the upstream host could be
	// made ("connect-failure").
	RetryConnectFailure RetryOn = 1 << iota
	// RetryReset: the upstream connection closed before the response
	// ("reset").
	RetryReset
	// RetryPerTryTimeout: the attempt's per-try timeout expired
	// ("per-try-timeout").
	RetryPerTryTimeout
	// RetryServerFailure: a response the codec classifies as a server
	// failure ("server-failure").
	RetryServerFailure

	retryOnAll = RetryConnectFailure | RetryReset | RetryPerTryTimeout | RetryServerFailure
)

// ParseRetryOn parses retry_on (api.RetryOnList): a blank s is the empty
// set; an empty item or an unknown name is an error.
func ParseRetryOn(s string) (RetryOn, error) {
	conds, err := api.RetryOnList(s)
	if err != nil {
		return 0, err
	}
	var on RetryOn
	for _, c := range conds {
		on |= 1 << slices.Index(api.RetryOnConditions, c)
	}
	return on, nil
}

// String returns the retry_on form of o: names joined by commas, in the
// order of the constants; "" for the empty set.
func (o RetryOn) String() string {
	var b strings.Builder
	for i, name := range api.RetryOnConditions {
		if o&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(name)
		}
	}
	if rest := o &^ retryOnAll; rest != 0 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "RetryOn(%#x)", uint8(rest))
	}
	return b.String()
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

// Match returns the first route matching md, or nil. A table made by
// NewTable finds it through an index of its exact matches, with the same
// result as a scan in order.
func (t *Table) Match(md *codec.Metadata) *Route {
	if t == nil {
		return nil
	}
	if t.index != nil {
		return t.index.match(t.Routes, md)
	}
	for _, r := range t.Routes {
		if r.matches(md) {
			return r
		}
	}
	return nil
}

func (r *Route) matches(md *codec.Metadata) bool { return r.Matchers.Match(md) }

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

// Matchers are a conjunction of matchers.
type Matchers []Matcher

// Match reports whether md satisfies every matcher (true for none).
func (ms Matchers) Match(md *codec.Metadata) bool {
	for i := range ms {
		if !ms[i].Match(md) {
			return false
		}
	}
	return true
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

// Validate checks that t can serve requests: every route has a target,
// weighted clusters have names, a non-zero total weight and were prepared
// by NewTable (or Compile), matchers are complete, and timeouts and retry
// policies are in range. It only reads t, so it may run on a table in
// use.
func (t *Table) Validate() error {
	for i, r := range t.Routes {
		if r == nil {
			return fmt.Errorf("route %d: nil", i)
		}
		where := fmt.Sprintf("route %d (%q)", i, r.Name)
		if r.Cluster == "" && len(r.Weighted) == 0 {
			return fmt.Errorf("%s: no cluster", where)
		}
		var total uint64
		for _, w := range r.Weighted {
			if w.Name == "" {
				return fmt.Errorf("%s: weighted cluster without a name", where)
			}
			total += uint64(w.Weight)
		}
		switch {
		case len(r.Weighted) > 0 && total == 0:
			return fmt.Errorf("%s: weighted clusters have a total weight of 0", where)
		case r.total != total && r.total == 0:
			return fmt.Errorf("%s: weighted clusters not prepared: build the table with router.NewTable", where)
		case r.total != total:
			return fmt.Errorf("%s: weighted clusters changed after router.NewTable (total weight %d, prepared %d)", where, total, r.total)
		}
		if err := r.validateTimeouts(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
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

func (r *Route) validateTimeouts() error {
	p := &r.Retry
	switch {
	case r.Timeout < 0:
		return fmt.Errorf("timeout %v is negative", r.Timeout)
	case p.PerTryTimeout < 0:
		return fmt.Errorf("retry per-try timeout %v is negative", p.PerTryTimeout)
	case r.Timeout > 0 && p.PerTryTimeout > r.Timeout:
		return fmt.Errorf("retry per-try timeout %v exceeds the route's timeout %v", p.PerTryTimeout, r.Timeout)
	case p.NumRetries < 0 || p.NumRetries > MaxRetries:
		return fmt.Errorf("%d retries, want 0 to %d", p.NumRetries, MaxRetries)
	case p.On&^retryOnAll != 0:
		return fmt.Errorf("unknown retry conditions %v", p.On&^retryOnAll)
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
