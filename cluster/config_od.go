package cluster

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// outlierDurations are outlier_detection's duration fields and where they go.
func outlierDurations(o *OutlierDetection) map[string]*time.Duration {
	return map[string]*time.Duration{"interval": &o.Interval, "base_ejection_time": &o.BaseEjectionTime,
		"max_ejection_time": &o.MaxEjectionTime, "max_ejection_time_jitter": &o.MaxEjectionTimeJitter}
}

// outlierUints are its unsigned fields, with their bound.
func outlierUints(o *OutlierDetection) map[string]struct {
	dst   *uint32
	limit uint64
} {
	type u = struct {
		dst   *uint32
		limit uint64
	}
	return map[string]u{
		"consecutive_5xx": {&o.Consecutive5xx, math.MaxUint32}, "enforcing_consecutive_5xx": {&o.EnforcingConsecutive5xx, 100},
		"consecutive_gateway_failure": {&o.ConsecutiveGatewayFailure, math.MaxUint32}, "enforcing_consecutive_gateway_failure": {&o.EnforcingConsecutiveGatewayFailure, 100},
		"consecutive_local_origin_failure": {&o.ConsecutiveLocalOriginFailure, math.MaxUint32}, "enforcing_consecutive_local_origin_failure": {&o.EnforcingConsecutiveLocalOriginFailure, 100},
		"max_ejection_percent": {&o.MaxEjectionPercent, 100},
	}
}

// Envoy's success-rate and failure-percentage detectors: accepted, not run.
var outlierUnrun = []string{"enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume",
	"success_rate_stdev_factor", "enforcing_local_origin_success_rate", "failure_percentage_threshold",
	"enforcing_failure_percentage", "enforcing_failure_percentage_local_origin", "failure_percentage_minimum_hosts",
	"failure_percentage_request_volume", "monitors", "detect_degraded_hosts"}

// parseOutlierDetection reads outlier_detection into c (Envoy's defaults
// for the fields not set).
func parseOutlierDetection(raw json.RawMessage, c *Config) error {
	if isNull(raw) {
		return nil
	}
	o := defaultOutlierDetection
	allowed := append([]string{"split_external_local_origin_errors", "always_eject_one_host", "successful_active_health_check_uneject_host"}, outlierUnrun...)
	for k := range outlierDurations(&o) {
		allowed = append(allowed, k)
	}
	for k := range outlierUints(&o) {
		allowed = append(allowed, k)
	}
	const what = "outlier_detection"
	fs, err := fields(raw, what, allowed...)
	if err != nil {
		return err
	}
	for k, dst := range outlierDurations(&o) {
		if v, ok := fs[k]; ok && !isNull(v) {
			if *dst, err = ParseDuration(v); err != nil {
				return fmt.Errorf("%s.%s: %w", what, k, err)
			}
		}
	}
	for k, f := range outlierUints(&o) {
		v, set, err := uintField(fs, k, what, f.limit)
		if err != nil {
			return err
		}
		if set {
			*f.dst = uint32(v)
		}
	}
	for k, dst := range map[string]*bool{"split_external_local_origin_errors": &o.SplitExternalLocalOriginErrors, "always_eject_one_host": &o.AlwaysEjectOneHost,
		"successful_active_health_check_uneject_host": &o.SuccessfulActiveHealthCheckUnejectHost} {
		if v, ok := fs[k]; ok && !isNull(v) {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("%s.%s: not a bool: %s", what, k, v)
			}
		}
	}
	if o.Interval <= 0 || o.BaseEjectionTime <= 0 {
		return fmt.Errorf("%s: interval and base_ejection_time must be positive", what)
	}
	for _, k := range outlierUnrun {
		if v, ok := fs[k]; ok && !isNull(v) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: outlier_detection.%s: only the consecutive-failure detectors run; success-rate and failure-percentage ejection are not implemented yet", c.Name, k))
		}
	}
	c.OutlierDetection = &o
	return nil
}

// parseCommonLB reads common_lb_config's healthy_panic_threshold; its
// other fields are accepted with a warning.
func parseCommonLB(raw json.RawMessage, c *Config) error {
	c.PanicThreshold = DefaultPanicThreshold
	if isNull(raw) {
		return nil
	}
	const what = "common_lb_config"
	others := []string{"zone_aware_lb_config", "locality_weighted_lb_config", "update_merge_window", "ignore_new_hosts_until_first_hc",
		"close_connections_on_host_set_change", "consistent_hashing_lb_config", "override_host_status", "scale_locality_weight_by_host_count"}
	fs, err := fields(raw, what, append(others, "healthy_panic_threshold")...)
	if err != nil {
		return err
	}
	if v, ok := fs["healthy_panic_threshold"]; ok && !isNull(v) {
		pfs, err := fields(v, what+".healthy_panic_threshold", "value")
		if err != nil {
			return err
		}
		var pct float64
		if pv, ok := pfs["value"]; ok && (json.Unmarshal(pv, &pct) != nil || pct < 0 || pct > 100) {
			return fmt.Errorf("%s.healthy_panic_threshold.value: %s is not a percentage in 0-100", what, pv)
		}
		c.PanicThreshold = pct
	}
	for _, k := range others {
		if v, ok := fs[k]; ok && !isNull(v) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: common_lb_config.%s is not implemented yet and is ignored", c.Name, k))
		}
	}
	return nil
}
