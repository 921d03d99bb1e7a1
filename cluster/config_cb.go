package cluster

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// threshold is one circuit_breakers.thresholds entry, checked.
type threshold struct {
	priority corev3.RoutingPriority
	// unenforced lists the fields set that metaproxy does not enforce yet.
	unenforced []string
}

func checkThreshold(t *clusterv3.CircuitBreakers_Thresholds, what string) (threshold, error) {
	out := threshold{priority: t.GetPriority()}
	if p := out.priority; p != corev3.RoutingPriority_DEFAULT && p != corev3.RoutingPriority_HIGH {
		return out, fmt.Errorf("%s.priority: %d is not one of DEFAULT, HIGH", what, p)
	}
	if t.GetMaxConnectionPools() != nil {
		out.unenforced = append(out.unenforced, "max_connection_pools")
	}
	if rb := t.GetRetryBudget(); rb != nil {
		if bp := rb.GetBudgetPercent(); bp != nil && (bp.GetValue() < 0 || bp.GetValue() > 100) {
			return out, fmt.Errorf("%s.retry_budget.budget_percent.value: %g is not a percentage in 0-100", what, bp.GetValue())
		}
		out.unenforced = append(out.unenforced, "retry_budget")
	}
	if t.GetTrackRemaining() {
		out.unenforced = append(out.unenforced, "track_remaining")
	}
	return out, nil
}

// circuitBreakersFromProto reads circuit_breakers into c: the first
// DEFAULT threshold (as Envoy) gives max_connections, max_pending_requests,
// max_requests and max_retries; max_connection_pools, retry_budget and
// track_remaining are checked and warned about, as are HIGH thresholds
// (metaproxy has no request priorities) and per_host_thresholds.
func circuitBreakersFromProto(pb *clusterv3.Cluster, c *Config) error {
	c.MaxRetries = DefaultMaxRetries
	c.MaxConnections, c.MaxPendingRequests, c.MaxRequests = DefaultCircuitBreakerLimit, DefaultCircuitBreakerLimit, DefaultCircuitBreakerLimit
	cb := pb.GetCircuitBreakers()
	warn := func(format string, args ...any) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: ", c.Name)+fmt.Sprintf(format, args...))
	}
	for _, list := range []struct {
		name string
		ts   []*clusterv3.CircuitBreakers_Thresholds
	}{{"thresholds", cb.GetThresholds()}, {"per_host_thresholds", cb.GetPerHostThresholds()}} {
		seen := map[corev3.RoutingPriority]bool{}
		for i, pt := range list.ts {
			what := fmt.Sprintf("circuit_breakers.%s[%d]", list.name, i)
			t, err := checkThreshold(pt, what)
			if err != nil {
				return err
			}
			switch {
			case list.name == "per_host_thresholds":
				warn("%s: per-host circuit breakers are not enforced yet", what)
			case seen[t.priority]:
				warn("%s: a second %s threshold is ignored (Envoy uses the first)", what, t.priority)
			case t.priority == corev3.RoutingPriority_HIGH:
				warn("%s: HIGH priority thresholds do not apply: metaproxy routes have no priority, so the DEFAULT threshold limits every request", what)
			default:
				if v := pt.GetMaxRetries(); v != nil {
					c.MaxRetries = int(v.GetValue())
				}
				if v := pt.GetMaxConnections(); v != nil {
					c.MaxConnections = int(v.GetValue())
				}
				if v := pt.GetMaxPendingRequests(); v != nil {
					c.MaxPendingRequests = int(v.GetValue())
				}
				if v := pt.GetMaxRequests(); v != nil {
					c.MaxRequests = int(v.GetValue())
				}
				for _, k := range t.unenforced {
					warn("circuit_breakers field %q is not enforced yet", k)
				}
			}
			seen[t.priority] = true
		}
	}
	return nil
}
