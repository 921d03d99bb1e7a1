package cluster

import (
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// HealthCheck is a cluster's active health check (Envoy's
// core.v3.HealthCheck, the fields metaproxy runs): every Interval each
// host is checked, a check fails when it gets no good answer within
// Timeout, UnhealthyThreshold consecutive failures mark a host unhealthy
// and HealthyThreshold consecutive successes healthy again. A new host is
// unhealthy until its first check passes (as Envoy's pending hosts).
type HealthCheck struct {
	Timeout  time.Duration
	Interval time.Duration
	// IntervalJitter is added to each interval, at random up to it;
	// IntervalJitterPercent adds up to that percent of the interval.
	IntervalJitter        time.Duration
	IntervalJitterPercent uint32
	// InitialJitter delays each host's first check at random up to it.
	InitialJitter time.Duration
	// NoTrafficInterval replaces Interval until the cluster has carried a
	// request (Envoy's default: 60 s).
	NoTrafficInterval time.Duration
	// UnhealthyInterval is the interval for unhealthy hosts (default
	// Interval); UnhealthyEdgeInterval the one after a host is marked
	// unhealthy (default UnhealthyInterval); HealthyEdgeInterval the one
	// after it is marked healthy (default Interval).
	UnhealthyInterval, UnhealthyEdgeInterval, HealthyEdgeInterval time.Duration
	UnhealthyThreshold, HealthyThreshold                          uint32
	// ReuseConnection keeps the connection between checks (Envoy's
	// default: true).
	ReuseConnection bool

	// TCP is tcp_health_check: connect, and if Send is set write it and
	// wait for every Receive block, in order (not necessarily adjacent).
	// Nil for a codec probe.
	TCP *TCPHealthCheck
	// Codec is custom_health_check metaproxy.health_checkers.codec: a
	// protocol probe (a Dubbo heartbeat) built by the codec of the listener
	// that routes to the cluster, which must implement codec.Prober.
	Codec bool
	// Prober is that listener's codec, set by the engine before the
	// cluster is built; ProberName names it, so that listeners of other
	// protocols do not share the cluster.
	Prober     codec.Factory `json:"-"`
	ProberName string
}

// TCPHealthCheck is tcp_health_check's payloads, decoded.
type TCPHealthCheck struct {
	Send    []byte
	Receive [][]byte
}

// HealthCheckCodecName is the custom_health_check name of the codec probe.
const HealthCheckCodecName = "metaproxy.health_checkers.codec"

// OutlierDetection is a cluster's outlier_detection (Envoy's
// cluster.v3.OutlierDetection, the consecutive-failure detectors):
// a host is ejected when its consecutive failures of one kind reach the
// kind's threshold (and the kind's enforcing percentage draws it), for
// BaseEjectionTime times the number of times it was ejected (capped at
// MaxEjectionTime); an ejected host returns at the first Interval tick
// after its time; no ejection takes the ejected hosts over
// MaxEjectionPercent of the cluster.
type OutlierDetection struct {
	// Consecutive5xx counts server failures (and, unless
	// SplitExternalLocalOriginErrors, local-origin failures: connect
	// failures, resets, timeouts).
	Consecutive5xx, EnforcingConsecutive5xx uint32
	// ConsecutiveGatewayFailure counts gateway failures: connect failures,
	// resets and timeouts (Envoy's 502, 503, 504).
	ConsecutiveGatewayFailure, EnforcingConsecutiveGatewayFailure uint32
	// ConsecutiveLocalOriginFailure counts local-origin failures when
	// SplitExternalLocalOriginErrors.
	ConsecutiveLocalOriginFailure, EnforcingConsecutiveLocalOriginFailure uint32
	SplitExternalLocalOriginErrors                                        bool

	Interval, BaseEjectionTime, MaxEjectionTime, MaxEjectionTimeJitter time.Duration
	MaxEjectionPercent                                                 uint32
	AlwaysEjectOneHost                                                 bool
	// SuccessfulActiveHealthCheckUnejectHost returns an ejected host as
	// soon as an active health check of it passes (Envoy's default: true).
	SuccessfulActiveHealthCheckUnejectHost bool
}

// Envoy's outlier_detection defaults.
var defaultOutlierDetection = OutlierDetection{
	Consecutive5xx: 5, EnforcingConsecutive5xx: 100,
	ConsecutiveGatewayFailure: 5, EnforcingConsecutiveGatewayFailure: 0,
	ConsecutiveLocalOriginFailure: 5, EnforcingConsecutiveLocalOriginFailure: 100,
	Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second, MaxEjectionTime: 300 * time.Second,
	MaxEjectionPercent: 10, SuccessfulActiveHealthCheckUnejectHost: true,
}

// DefaultPanicThreshold is Envoy's healthy_panic_threshold: below 50 %
// healthy hosts a cluster balances over all of them.
const DefaultPanicThreshold = 50.0
