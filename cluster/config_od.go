package cluster

import (
	"fmt"
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Envoy's success-rate and failure-percentage detectors: accepted, not run.
var outlierUnrun = []string{"enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume",
	"success_rate_stdev_factor", "enforcing_local_origin_success_rate", "failure_percentage_threshold",
	"enforcing_failure_percentage", "enforcing_failure_percentage_local_origin", "failure_percentage_minimum_hosts",
	"failure_percentage_request_volume", "monitors"}

// outlierFromProto reads outlier_detection into c (Envoy's defaults for
// the fields not set).
func outlierFromProto(pb *clusterv3.Cluster, c *Config) error {
	od := pb.GetOutlierDetection()
	if od == nil {
		return nil
	}
	const what = "outlier_detection"
	o := defaultOutlierDetection
	for _, d := range []struct {
		name string
		v    *durationpb.Duration
		dst  *time.Duration
	}{{"interval", od.GetInterval(), &o.Interval}, {"base_ejection_time", od.GetBaseEjectionTime(), &o.BaseEjectionTime},
		{"max_ejection_time", od.GetMaxEjectionTime(), &o.MaxEjectionTime}, {"max_ejection_time_jitter", od.GetMaxEjectionTimeJitter(), &o.MaxEjectionTimeJitter}} {
		var err error
		if *d.dst, err = durationOf(d.v, what+"."+d.name, *d.dst); err != nil {
			return err
		}
	}
	for _, u := range []struct {
		name  string
		v     *wrapperspb.UInt32Value
		dst   *uint32
		limit uint32
	}{
		{"consecutive_5xx", od.GetConsecutive_5Xx(), &o.Consecutive5xx, math.MaxUint32},
		{"enforcing_consecutive_5xx", od.GetEnforcingConsecutive_5Xx(), &o.EnforcingConsecutive5xx, 100},
		{"consecutive_gateway_failure", od.GetConsecutiveGatewayFailure(), &o.ConsecutiveGatewayFailure, math.MaxUint32},
		{"enforcing_consecutive_gateway_failure", od.GetEnforcingConsecutiveGatewayFailure(), &o.EnforcingConsecutiveGatewayFailure, 100},
		{"consecutive_local_origin_failure", od.GetConsecutiveLocalOriginFailure(), &o.ConsecutiveLocalOriginFailure, math.MaxUint32},
		{"enforcing_consecutive_local_origin_failure", od.GetEnforcingConsecutiveLocalOriginFailure(), &o.EnforcingConsecutiveLocalOriginFailure, 100},
		{"max_ejection_percent", od.GetMaxEjectionPercent(), &o.MaxEjectionPercent, 100},
	} {
		if u.v == nil {
			continue
		}
		if u.v.GetValue() > u.limit {
			return fmt.Errorf("%s.%s: %d exceeds %d", what, u.name, u.v.GetValue(), u.limit)
		}
		*u.dst = u.v.GetValue()
	}
	o.SplitExternalLocalOriginErrors = od.GetSplitExternalLocalOriginErrors()
	if v := od.GetAlwaysEjectOneHost(); v != nil {
		o.AlwaysEjectOneHost = v.GetValue()
	}
	if v := od.GetSuccessfulActiveHealthCheckUnejectHost(); v != nil {
		o.SuccessfulActiveHealthCheckUnejectHost = v.GetValue()
	}
	if o.Interval <= 0 || o.BaseEjectionTime <= 0 {
		return fmt.Errorf("%s: interval and base_ejection_time must be positive", what)
	}
	m := od.ProtoReflect()
	for _, k := range outlierUnrun {
		if has(m, k) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: outlier_detection.%s: only the consecutive-failure detectors run; success-rate and failure-percentage ejection are not implemented yet", c.Name, k))
		}
	}
	c.OutlierDetection = &o
	return nil
}

// commonLBFromProto reads common_lb_config's healthy_panic_threshold; its
// other fields are accepted with a warning.
func commonLBFromProto(pb *clusterv3.Cluster, c *Config) error {
	c.PanicThreshold = DefaultPanicThreshold
	cl := pb.GetCommonLbConfig()
	if cl == nil {
		return nil
	}
	const what = "common_lb_config"
	if p := cl.GetHealthyPanicThreshold(); p != nil {
		if p.GetValue() < 0 || p.GetValue() > 100 || math.IsNaN(p.GetValue()) {
			return fmt.Errorf("%s.healthy_panic_threshold.value: %g is not a percentage in 0-100", what, p.GetValue())
		}
		c.PanicThreshold = p.GetValue()
	}
	m := cl.ProtoReflect()
	for _, k := range []string{"zone_aware_lb_config", "locality_weighted_lb_config", "update_merge_window", "ignore_new_hosts_until_first_hc",
		"close_connections_on_host_set_change", "consistent_hashing_lb_config", "override_host_status"} {
		if has(m, k) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: common_lb_config.%s is not implemented yet and is ignored", c.Name, k))
		}
	}
	return nil
}
