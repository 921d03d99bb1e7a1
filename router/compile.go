package router

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
	"github.com/metaproxy/metaproxy/codec"
)

// Compile builds a Table from Aeraki's RouteConfiguration. Warnings name
// configured features the engine does not run yet.
func Compile(rc *routev1alpha.RouteConfiguration) (t *Table, warnings []string, err error) {
	var routes []*Route
	for i, r := range rc.GetRoutes() {
		where := fmt.Sprintf("route_config %q: routes[%d] (%q)", rc.GetName(), i, r.GetName())
		cr := &Route{Name: r.GetName()}
		if cr.Matchers, err = CompileMatch(r.GetMatch()); err != nil {
			return nil, nil, fmt.Errorf("%s: match.%w", where, err)
		}
		a := r.GetRoute()
		if a == nil {
			return nil, nil, fmt.Errorf("%s: route (the action) is required", where)
		}
		switch cs := a.GetClusterSpecifier().(type) {
		case *routev1alpha.RouteAction_Cluster:
			cr.Cluster = cs.Cluster
		case *routev1alpha.RouteAction_WeightedClusters:
			for _, w := range cs.WeightedClusters.GetClusters() {
				if w.GetWeight() == nil {
					return nil, nil, fmt.Errorf("%s: weighted cluster %q needs a weight", where, w.GetName())
				}
				cr.Weighted = append(cr.Weighted, WeightedCluster{Name: w.GetName(), Weight: w.GetWeight().GetValue()})
			}
		default:
			return nil, nil, fmt.Errorf("%s: route needs cluster or weighted_clusters", where)
		}
		// A copy: the table shares nothing with the configuration message.
		cr.HashPolicy = slices.Clone(a.GetHashPolicy())
		for _, mp := range a.GetRequestMirrorPolicies() {
			cr.Mirrors = append(cr.Mirrors, Mirror{Cluster: mp.GetCluster(), Millionths: millionths(mp.GetRuntimeFraction())})
		}
		cr.Timeout = a.GetTimeout().AsDuration()
		if rp := a.GetRetryPolicy(); rp != nil {
			if cr.Retry, err = compileRetryPolicy(rp); err != nil {
				return nil, nil, fmt.Errorf("%s: route.retry_policy.%w", where, err)
			}
		}
		for _, kv := range r.GetRequestMutation() {
			cr.RequestMutation = append(cr.RequestMutation, codec.KV{Key: kv.GetKey(), Value: kv.GetValue()})
		}
		for _, kv := range r.GetResponseMutation() {
			cr.ResponseMutation = append(cr.ResponseMutation, codec.KV{Key: kv.GetKey(), Value: kv.GetValue()})
		}
		routes = append(routes, cr)
	}
	if t, err = NewTable(rc.GetName(), routes); err != nil {
		return nil, nil, fmt.Errorf("route_config %q: %w", rc.GetName(), err)
	}
	return t, warnings, nil
}

// compileRetryPolicy converts a retry_policy; an error starts with the
// name of the offending field.
func compileRetryPolicy(rp *routev1alpha.RetryPolicy) (RetryPolicy, error) {
	on, err := ParseRetryOn(rp.GetRetryOn())
	if err != nil {
		return RetryPolicy{}, fmt.Errorf("retry_on: %w", err)
	}
	if on == 0 {
		return RetryPolicy{}, fmt.Errorf("retry_on: at least one of %s is required", strings.Join(api.RetryOnConditions, ", "))
	}
	p := RetryPolicy{NumRetries: 1, PerTryTimeout: rp.GetPerTryTimeout().AsDuration(), On: on}
	if n := rp.GetNumRetries(); n != nil {
		if n.GetValue() > MaxRetries {
			return RetryPolicy{}, fmt.Errorf("num_retries: %d retries, at most %d allowed", n.GetValue(), MaxRetries)
		}
		p.NumRetries = int(n.GetValue())
	}
	return p, nil
}

func millionths(rf *envoy.RuntimeFractionalPercent) uint32 {
	if rf == nil || rf.GetDefaultValue() == nil {
		return 1e6
	}
	fp := rf.GetDefaultValue()
	var den uint64
	switch fp.GetDenominator() {
	case envoy.FractionalPercent_TEN_THOUSAND:
		den = 1e4
	case envoy.FractionalPercent_MILLION:
		den = 1e6
	default:
		den = 100
	}
	return uint32(min(uint64(fp.GetNumerator())*1e6/den, 1e6))
}

// CompileMatch compiles a route match (every metadata matcher must hold;
// none matches everything), for filters whose rules match as routes do. An
// error starts with the offending field ("metadata[1]: ...").
func CompileMatch(rm *routev1alpha.RouteMatch) (Matchers, error) {
	var ms Matchers
	for j, hm := range rm.GetMetadata() {
		m, err := CompileMatcher(hm)
		if err != nil {
			return nil, fmt.Errorf("metadata[%d]: %w", j, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// CompileMatcher compiles one of Envoy's header matchers on metadata.
func CompileMatcher(hm *envoy.HeaderMatcher) (Matcher, error) {
	m := Matcher{Key: hm.GetName(), Invert: hm.GetInvertMatch(), TreatMissingAsEmpty: hm.GetTreatMissingHeaderAsEmpty()}
	if m.Key == "" {
		return m, fmt.Errorf("name is required")
	}
	switch s := hm.GetHeaderMatchSpecifier().(type) {
	case nil:
		m.Kind, m.Present = Present, true
	case *envoy.HeaderMatcher_ExactMatch:
		m.Kind, m.Value = Exact, s.ExactMatch
	case *envoy.HeaderMatcher_PrefixMatch:
		m.Kind, m.Value = Prefix, s.PrefixMatch
	case *envoy.HeaderMatcher_SuffixMatch:
		m.Kind, m.Value = Suffix, s.SuffixMatch
	case *envoy.HeaderMatcher_ContainsMatch:
		m.Kind, m.Value = Contains, s.ContainsMatch
	case *envoy.HeaderMatcher_PresentMatch:
		m.Kind, m.Present = Present, s.PresentMatch
	case *envoy.HeaderMatcher_RangeMatch:
		m.Kind, m.Start, m.End = Range, s.RangeMatch.GetStart(), s.RangeMatch.GetEnd()
	case *envoy.HeaderMatcher_SafeRegexMatch:
		re, err := compileRegex(s.SafeRegexMatch)
		if err != nil {
			return m, err
		}
		m.Kind, m.Re = Regex, re
	case *envoy.HeaderMatcher_StringMatch:
		sm := s.StringMatch
		m.IgnoreCase = sm.GetIgnoreCase()
		switch p := sm.GetMatchPattern().(type) {
		case *envoy.StringMatcher_Exact:
			m.Kind, m.Value = Exact, p.Exact
		case *envoy.StringMatcher_Prefix:
			m.Kind, m.Value = Prefix, p.Prefix
		case *envoy.StringMatcher_Suffix:
			m.Kind, m.Value = Suffix, p.Suffix
		case *envoy.StringMatcher_Contains:
			m.Kind, m.Value = Contains, p.Contains
		case *envoy.StringMatcher_SafeRegex:
			re, err := compileRegex(p.SafeRegex)
			if err != nil {
				return m, err
			}
			m.Kind, m.Re = Regex, re
		default:
			return m, fmt.Errorf("string_match needs a pattern")
		}
	default:
		return m, fmt.Errorf("unsupported matcher %T", s)
	}
	return m, nil
}

func compileRegex(rm *envoy.RegexMatcher) (*regexp.Regexp, error) {
	// Envoy's safe_regex must match the whole value.
	re, err := regexp.Compile("^(?:" + rm.GetRegex() + ")$")
	if err != nil {
		return nil, fmt.Errorf("safe_regex %q: %w", rm.GetRegex(), err)
	}
	return re, nil
}
