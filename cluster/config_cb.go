package cluster

import (
	"encoding/json"
	"fmt"
	"math"
)

// threshold is one circuit_breakers.thresholds entry.
type threshold struct {
	priority string
	limits   map[string]uint64 // the max_* fields set
	// unenforced lists the fields set that metaproxy does not enforce yet.
	unenforced []string
}

var thresholdLimits = []string{"max_connections", "max_pending_requests", "max_requests", "max_retries", "max_connection_pools"}

func parseThreshold(raw json.RawMessage, what string) (threshold, error) {
	t := threshold{limits: map[string]uint64{}}
	fs, err := fields(raw, what, append([]string{"priority", "retry_budget", "track_remaining"}, thresholdLimits...)...)
	if err != nil {
		return t, err
	}
	if t.priority, err = enumField(fs, "priority", what, "DEFAULT", "HIGH"); err != nil {
		return t, err
	}
	if t.priority == "" {
		t.priority = "DEFAULT"
	}
	for _, k := range thresholdLimits {
		v, set, err := uintField(fs, k, what, math.MaxUint32)
		if err != nil {
			return t, err
		}
		if set {
			t.limits[k] = v
			if k == "max_connection_pools" {
				t.unenforced = append(t.unenforced, k)
			}
		}
	}
	if rb, ok := fs["retry_budget"]; ok && !isNull(rb) {
		w := what + ".retry_budget"
		rfs, err := fields(rb, w, "budget_percent", "min_retry_concurrency")
		if err != nil {
			return t, err
		}
		if bp, ok := rfs["budget_percent"]; ok && !isNull(bp) {
			pfs, err := fields(bp, w+".budget_percent", "value")
			if err != nil {
				return t, err
			}
			var pct float64
			if v, ok := pfs["value"]; ok && (json.Unmarshal(v, &pct) != nil || pct < 0 || pct > 100) {
				return t, fmt.Errorf("%s.budget_percent.value: %s is not a percentage in 0-100", w, v)
			}
		}
		if _, _, err := uintField(rfs, "min_retry_concurrency", w, math.MaxUint32); err != nil {
			return t, err
		}
		t.unenforced = append(t.unenforced, "retry_budget")
	}
	if tr, ok := fs["track_remaining"]; ok && !isNull(tr) {
		var on bool
		if err := json.Unmarshal(tr, &on); err != nil {
			return t, fmt.Errorf("%s.track_remaining: not a bool: %s", what, tr)
		}
		if on {
			t.unenforced = append(t.unenforced, "track_remaining")
		}
	}
	return t, nil
}

// parseCircuitBreakers reads circuit_breakers into c: the first DEFAULT
// threshold (as Envoy) gives max_connections, max_pending_requests,
// max_requests and max_retries; max_connection_pools, retry_budget and
// track_remaining are checked and warned about, as are HIGH thresholds
// (metaproxy has no request priorities) and per_host_thresholds.
func parseCircuitBreakers(raw json.RawMessage, c *Config) error {
	c.MaxRetries = DefaultMaxRetries
	c.MaxConnections, c.MaxPendingRequests, c.MaxRequests = DefaultCircuitBreakerLimit, DefaultCircuitBreakerLimit, DefaultCircuitBreakerLimit
	if isNull(raw) {
		return nil
	}
	fs, err := fields(raw, "circuit_breakers", "thresholds", "per_host_thresholds")
	if err != nil {
		return err
	}
	warn := func(format string, args ...any) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: ", c.Name)+fmt.Sprintf(format, args...))
	}
	for _, list := range []string{"thresholds", "per_host_thresholds"} {
		var ts []json.RawMessage
		if v, ok := fs[list]; ok && !isNull(v) {
			if err := json.Unmarshal(v, &ts); err != nil {
				return fmt.Errorf("circuit_breakers.%s: not a list", list)
			}
		}
		seen := map[string]bool{}
		for i, raw := range ts {
			what := fmt.Sprintf("circuit_breakers.%s[%d]", list, i)
			t, err := parseThreshold(raw, what)
			if err != nil {
				return err
			}
			switch {
			case list == "per_host_thresholds":
				warn("%s: per-host circuit breakers are not enforced yet", what)
			case seen[t.priority]:
				warn("%s: a second %s threshold is ignored (Envoy uses the first)", what, t.priority)
			case t.priority == "HIGH":
				warn("%s: HIGH priority thresholds do not apply: metaproxy routes have no priority, so the DEFAULT threshold limits every request", what)
			default:
				if v, ok := t.limits["max_retries"]; ok {
					c.MaxRetries = int(v)
				}
				for k, dst := range map[string]*int{"max_connections": &c.MaxConnections, "max_pending_requests": &c.MaxPendingRequests, "max_requests": &c.MaxRequests} {
					if v, ok := t.limits[k]; ok {
						*dst = int(v)
					}
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
