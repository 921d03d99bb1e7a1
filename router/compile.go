package router

import (
	"fmt"
	"regexp"

	"github.com/metaproxy/metaproxy/api/envoy"
	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
	"github.com/metaproxy/metaproxy/codec"
)

// Compile builds a Table from Aeraki's RouteConfiguration. Warnings name
// configured features the engine does not run yet.
func Compile(rc *routev1alpha.RouteConfiguration) (t *Table, warnings []string, err error) {
	t = &Table{Name: rc.GetName()}
	for i, r := range rc.GetRoutes() {
		where := fmt.Sprintf("route_config %q: routes[%d] (%q)", rc.GetName(), i, r.GetName())
		cr := &Route{Name: r.GetName()}
		for j, hm := range r.GetMatch().GetMetadata() {
			m, err := compileMatcher(hm)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: match.metadata[%d]: %w", where, j, err)
			}
			cr.Matchers = append(cr.Matchers, m)
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
		cr.HashPolicy = a.GetHashPolicy()
		if len(cr.HashPolicy) > 0 {
			warnings = append(warnings, where+": hash_policy is not implemented yet (no consistent-hash balancer); requests are balanced by the cluster's lb_policy")
		}
		for _, mp := range a.GetRequestMirrorPolicies() {
			cr.Mirrors = append(cr.Mirrors, Mirror{Cluster: mp.GetCluster(), Millionths: millionths(mp.GetRuntimeFraction())})
		}
		if len(cr.Mirrors) > 0 {
			warnings = append(warnings, where+": request_mirror_policies are not implemented yet; no request is mirrored")
		}
		for _, kv := range r.GetRequestMutation() {
			cr.RequestMutation = append(cr.RequestMutation, codec.KV{Key: kv.GetKey(), Value: kv.GetValue()})
		}
		for _, kv := range r.GetResponseMutation() {
			cr.ResponseMutation = append(cr.ResponseMutation, codec.KV{Key: kv.GetKey(), Value: kv.GetValue()})
		}
		t.Routes = append(t.Routes, cr)
	}
	if err := t.Validate(); err != nil {
		return nil, nil, fmt.Errorf("route_config %q: %w", rc.GetName(), err)
	}
	return t, warnings, nil
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

func compileMatcher(hm *envoy.HeaderMatcher) (Matcher, error) {
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
