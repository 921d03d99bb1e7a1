package cluster

import (
	"reflect"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a cluster's counters and gauges, named as Envoy's
// cluster.<name>.* stats. A Cluster shared by several listeners (see
// Manager) has one Stats for all of them, as Envoy's cluster stats are
// per cluster, not per listener.
type Stats struct {
	UpstreamRqTotal           atomic.Uint64 `stat:"upstream_rq_total"`
	UpstreamRqActive          atomic.Int64  `stat:"upstream_rq_active"`
	UpstreamRqPendingActive   atomic.Int64  `stat:"upstream_rq_pending_active"`
	UpstreamRqPendingOverflow atomic.Uint64 `stat:"upstream_rq_pending_overflow"` // over max_requests or max_pending_requests
	UpstreamCxActive          atomic.Int64  `stat:"upstream_cx_active"`
	UpstreamCxOverflow        atomic.Uint64 `stat:"upstream_cx_overflow"` // connections not made: max_connections
	UpstreamRqRetry           atomic.Uint64 `stat:"upstream_rq_retry"`
	UpstreamRqRetryOverflow   atomic.Uint64 `stat:"upstream_rq_retry_overflow"`
	UpstreamRqTimeout         atomic.Uint64 `stat:"upstream_rq_timeout"`
	UpstreamRqPerTryTimeout   atomic.Uint64 `stat:"upstream_rq_per_try_timeout"`
	LBHealthyPanic            atomic.Uint64 `stat:"lb_healthy_panic"` // picks made in panic mode

	// Circuit breakers: 1 while the DEFAULT-priority limit is reached.
	CxOpen        atomic.Int64 `stat:"circuit_breakers.default.cx_open"`
	RqPendingOpen atomic.Int64 `stat:"circuit_breakers.default.rq_pending_open"`
	RqOpen        atomic.Int64 `stat:"circuit_breakers.default.rq_open"`
	RqRetryOpen   atomic.Int64 `stat:"circuit_breakers.default.rq_retry_open"`

	// Outlier detection.
	EjectionsActive                     atomic.Int64  `stat:"outlier_detection.ejections_active"`
	EjectionsOverflow                   atomic.Uint64 `stat:"outlier_detection.ejections_overflow"` // not ejected: max_ejection_percent
	EjectionsEnforcedTotal              atomic.Uint64 `stat:"outlier_detection.ejections_enforced_total"`
	EjectionsDetectedConsecutive5xx     atomic.Uint64 `stat:"outlier_detection.ejections_detected_consecutive_5xx"`
	EjectionsEnforcedConsecutive5xx     atomic.Uint64 `stat:"outlier_detection.ejections_enforced_consecutive_5xx"`
	EjectionsDetectedGatewayFailure     atomic.Uint64 `stat:"outlier_detection.ejections_detected_consecutive_gateway_failure"`
	EjectionsEnforcedGatewayFailure     atomic.Uint64 `stat:"outlier_detection.ejections_enforced_consecutive_gateway_failure"`
	EjectionsDetectedLocalOriginFailure atomic.Uint64 `stat:"outlier_detection.ejections_detected_consecutive_local_origin_failure"`
	EjectionsEnforcedLocalOriginFailure atomic.Uint64 `stat:"outlier_detection.ejections_enforced_consecutive_local_origin_failure"`

	// Active health checking.
	HealthCheckAttempt        atomic.Uint64 `stat:"health_check.attempt"`
	HealthCheckSuccess        atomic.Uint64 `stat:"health_check.success"`
	HealthCheckFailure        atomic.Uint64 `stat:"health_check.failure"`
	HealthCheckNetworkFailure atomic.Uint64 `stat:"health_check.network_failure"` // connect failed or timed out (also counted in failure)
	HealthCheckHealthy        atomic.Int64  `stat:"health_check.healthy"`
}

// Stats returns the cluster's stats.
func (c *Cluster) Stats() *Stats { return &c.stats }

// rqTimeBuckets are Envoy's default histogram buckets, in milliseconds.
var rqTimeBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

func newRqTime(name string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "envoy_cluster_upstream_rq_time", Help: "Time from a request's sending upstream to its answer, in milliseconds.",
		ConstLabels: prometheus.Labels{"envoy_cluster_name": name}, Buckets: rqTimeBuckets,
	})
}

// ObserveRqTime records the time an upstream took to answer (Envoy's
// upstream_rq_time histogram): a lock-free, allocation-free observation.
func (c *Cluster) ObserveRqTime(d time.Duration) {
	c.rqTime.Observe(float64(d) / float64(time.Millisecond))
}

// RqTime returns the upstream_rq_time histogram, to be collected.
func (c *Cluster) RqTime() prometheus.Collector { return c.rqTime }

// Each calls f with every stat of c: its name, value, and whether it is a
// gauge. membership_total and membership_healthy are computed.
func (c *Cluster) EachStat(f func(name string, value int64, gauge bool)) {
	total, healthy := c.Membership()
	f("membership_total", int64(total), true)
	f("membership_healthy", int64(healthy), true)
	v := reflect.ValueOf(&c.stats).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("stat")
		switch s := v.Field(i).Addr().Interface().(type) {
		case *atomic.Uint64:
			f(name, int64(s.Load()), false)
		case *atomic.Int64:
			f(name, s.Load(), true)
		}
	}
}

// gauge1 sets g to 1 while on, 0 otherwise.
func gauge1(g *atomic.Int64, on bool) {
	v := int64(0)
	if on {
		v = 1
	}
	if g.Load() != v {
		g.Store(v)
	}
}
