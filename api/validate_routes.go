package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/metaproxy/metaproxy/api/envoy"
	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
)

// Aeraki's limits on routes.
const (
	maxMutations     = 1000
	maxMutationBytes = 16384
	maxHashKeys      = 100
)

// MaxRetries bounds RetryPolicy.num_retries (a metaproxy extension).
const MaxRetries = 10

// RetryOnConditions are the values of RetryPolicy.retry_on, in the order
// error messages list them (and of router.RetryOn's bits).
var RetryOnConditions = []string{"connect-failure", "reset", "per-try-timeout", "server-failure"}

// RetryOnList splits a retry_on value, a comma-separated list of
// RetryOnConditions with blanks allowed around the commas, into its
// conditions. A blank value is no condition; an empty item or an unknown
// name is an error.
func RetryOnList(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	valid := strings.Join(RetryOnConditions, ", ")
	var out []string
	for tok := range strings.SplitSeq(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return nil, fmt.Errorf("empty condition in %q; valid conditions are %s", s, valid)
		}
		if !slices.Contains(RetryOnConditions, tok) {
			return nil, fmt.Errorf("unknown condition %q; valid conditions are %s", tok, valid)
		}
		out = append(out, tok)
	}
	return out, nil
}

func validateRoutes(rc *routev1alpha.RouteConfiguration, path string) error {
	if rc == nil {
		return errorf(path, "route configuration is nil")
	}
	for i, r := range rc.GetRoutes() {
		if err := validateRoute(r, index(field(path, "routes"), i)); err != nil {
			return err
		}
	}
	return nil
}

func validateRoute(r *routev1alpha.Route, path string) error {
	if err := validateMatch(r.GetMatch(), field(path, "match")); err != nil {
		return err
	}
	if err := validateAction(r.GetRoute(), field(path, "route")); err != nil {
		return err
	}
	if err := validateMutation(r.GetRequestMutation(), field(path, "request_mutation")); err != nil {
		return err
	}
	return validateMutation(r.GetResponseMutation(), field(path, "response_mutation"))
}

// validateMatch checks a route match; nil matches everything.
func validateMatch(m *routev1alpha.RouteMatch, path string) error {
	for i, h := range m.GetMetadata() {
		if err := validateHeaderMatcher(h, index(field(path, "metadata"), i)); err != nil {
			return err
		}
	}
	return nil
}

func validateAction(a *routev1alpha.RouteAction, path string) error {
	switch spec := a.GetClusterSpecifier().(type) {
	case *routev1alpha.RouteAction_Cluster:
		if spec.Cluster == "" {
			return errorf(field(path, "cluster"), "value is required")
		}
	case *routev1alpha.RouteAction_WeightedClusters:
		if err := validateWeighted(spec.WeightedClusters, field(path, "weighted_clusters")); err != nil {
			return err
		}
	default:
		return errorf(path, "cluster or weighted_clusters is required")
	}
	if n := len(a.GetHashPolicy()); n > maxHashKeys {
		return errorf(field(path, "hash_policy"), "%d keys, at most %d allowed", n, maxHashKeys)
	}
	for i, mp := range a.GetRequestMirrorPolicies() {
		p := index(field(path, "request_mirror_policies"), i)
		if mp.GetCluster() == "" {
			return errorf(field(p, "cluster"), "value is required")
		}
		if err := validateFraction(mp.GetRuntimeFraction(), field(p, "runtime_fraction")); err != nil {
			return err
		}
	}
	if err := validateDuration(a.GetTimeout(), field(path, "timeout")); err != nil {
		return err
	}
	if rp := a.GetRetryPolicy(); rp != nil {
		return validateRetryPolicy(rp, a.GetTimeout().AsDuration(), field(path, "retry_policy"))
	}
	return nil
}

// validateRetryPolicy checks a route's retry policy; timeout is the route's
// (0 when unset: no route limit).
func validateRetryPolicy(rp *routev1alpha.RetryPolicy, timeout time.Duration, path string) error {
	if n := rp.GetNumRetries(); n != nil && n.GetValue() > MaxRetries {
		return errorf(field(path, "num_retries"), "%d retries, at most %d allowed", n.GetValue(), MaxRetries)
	}
	ptt := field(path, "per_try_timeout")
	if err := validateDuration(rp.GetPerTryTimeout(), ptt); err != nil {
		return err
	}
	if d := rp.GetPerTryTimeout().AsDuration(); timeout > 0 && d > timeout {
		return errorf(ptt, "%v exceeds the route's timeout %v", d, timeout)
	}
	return validateRetryOn(rp.GetRetryOn(), field(path, "retry_on"))
}

// validateRetryOn checks a comma-separated list of retry conditions; blanks
// around the commas are allowed.
func validateRetryOn(s, path string) error {
	conds, err := RetryOnList(s)
	if err != nil {
		return errorf(path, "%v", err)
	}
	if len(conds) == 0 {
		return errorf(path, "value is required: one or more of %s", strings.Join(RetryOnConditions, ", "))
	}
	return nil
}

func validateWeighted(w *envoy.WeightedCluster, path string) error {
	if len(w.GetClusters()) == 0 {
		return errorf(field(path, "clusters"), "at least one cluster is required")
	}
	var total uint64
	for i, c := range w.GetClusters() {
		p := index(field(path, "clusters"), i)
		if c.GetName() == "" {
			return errorf(field(p, "name"), "value is required")
		}
		if c.GetWeight() == nil {
			return errorf(field(p, "weight"), "value is required")
		}
		total += uint64(c.GetWeight().GetValue())
	}
	if total == 0 {
		return errorf(field(path, "clusters"), "the weights add up to zero")
	}
	return nil
}

// validateFraction checks an optional runtime fraction.
func validateFraction(f *envoy.RuntimeFractionalPercent, path string) error {
	if f == nil {
		return nil
	}
	if f.GetDefaultValue() == nil {
		return errorf(field(path, "default_value"), "value is required")
	}
	if _, ok := envoy.FractionalPercent_DenominatorType_name[int32(f.GetDefaultValue().GetDenominator())]; !ok {
		return errorf(field(path, "default_value.denominator"), "unknown denominator %d", f.GetDefaultValue().GetDenominator())
	}
	return nil
}

func validateMutation(kvs []*routev1alpha.KeyValue, path string) error {
	if len(kvs) > maxMutations {
		return errorf(path, "%d entries, at most %d allowed", len(kvs), maxMutations)
	}
	for i, kv := range kvs {
		p := index(path, i)
		switch {
		case kv.GetKey() == "":
			return errorf(field(p, "key"), "value is required")
		case len(kv.GetKey()) > maxMutationBytes:
			return errorf(field(p, "key"), "longer than %d bytes", maxMutationBytes)
		case len(kv.GetValue()) > maxMutationBytes:
			return errorf(field(p, "value"), "longer than %d bytes", maxMutationBytes)
		}
	}
	return nil
}

// validateHeaderMatcher applies Envoy's rules to a metadata matcher.
func validateHeaderMatcher(h *envoy.HeaderMatcher, path string) error {
	if h.GetName() == "" {
		return errorf(field(path, "name"), "value is required")
	}
	switch spec := h.GetHeaderMatchSpecifier().(type) {
	case *envoy.HeaderMatcher_SafeRegexMatch:
		return validateRegex(spec.SafeRegexMatch, field(path, "safe_regex_match"))
	case *envoy.HeaderMatcher_StringMatch:
		return validateStringMatcher(spec.StringMatch, field(path, "string_match"))
	case *envoy.HeaderMatcher_PrefixMatch:
		return nonEmpty(spec.PrefixMatch, field(path, "prefix_match"))
	case *envoy.HeaderMatcher_SuffixMatch:
		return nonEmpty(spec.SuffixMatch, field(path, "suffix_match"))
	case *envoy.HeaderMatcher_ContainsMatch:
		return nonEmpty(spec.ContainsMatch, field(path, "contains_match"))
	}
	return nil
}

func validateStringMatcher(m *envoy.StringMatcher, path string) error {
	switch spec := m.GetMatchPattern().(type) {
	case *envoy.StringMatcher_Exact:
		return nil
	case *envoy.StringMatcher_Prefix:
		return nonEmpty(spec.Prefix, field(path, "prefix"))
	case *envoy.StringMatcher_Suffix:
		return nonEmpty(spec.Suffix, field(path, "suffix"))
	case *envoy.StringMatcher_Contains:
		return nonEmpty(spec.Contains, field(path, "contains"))
	case *envoy.StringMatcher_SafeRegex:
		return validateRegex(spec.SafeRegex, field(path, "safe_regex"))
	}
	return errorf(path, "one of exact, prefix, suffix, contains or safe_regex is required")
}

// validateRegex checks that an RE2 expression compiles. Go's regexp
// implements RE2 syntax.
func validateRegex(r *envoy.RegexMatcher, path string) error {
	if r.GetRegex() == "" {
		return errorf(field(path, "regex"), "value is required")
	}
	if _, err := regexp.Compile(r.GetRegex()); err != nil {
		return errorf(field(path, "regex"), "invalid RE2 expression: %v", err)
	}
	return nil
}

func nonEmpty(s, path string) error {
	if s == "" {
		return errorf(path, "value must not be empty")
	}
	return nil
}
