package cluster

import "sync/atomic"

// Circuit breakers: Envoy's DEFAULT-priority circuit_breakers.thresholds,
// shared by every listener that routes to the cluster (as Envoy's are
// shared by every worker). Each limit is a counter that a caller takes
// before it uses the resource and gives back after; a take over the limit
// fails at once, and the caller answers with the protocol's overloaded
// error. Taking and giving back are one atomic add each.

// resource is one limited count.
type resource struct {
	n    *atomic.Int64 // the count, which is also the stat of its level
	max  int64
	open *atomic.Int64 // the circuit_breakers.default.*_open gauge
}

func (r *resource) take() bool {
	n := r.n.Add(1)
	if n > r.max {
		r.n.Add(-1)
		return false
	}
	if n == r.max {
		gauge1(r.open, true)
	}
	return true
}

func (r *resource) give() {
	if r.n.Add(-1) < r.max && r.open.Load() != 0 {
		gauge1(r.open, false)
	}
}

// Limits are a cluster's circuit breakers.
type Limits struct {
	cx, pending, rq, retries resource
	retriesActive            atomic.Int64
}

func (c *Cluster) initLimits() {
	s, cfg := &c.stats, &c.cfg
	or := func(v int) int64 {
		if v <= 0 {
			return DefaultCircuitBreakerLimit
		}
		return int64(v)
	}
	c.limits.cx = resource{&s.UpstreamCxActive, or(cfg.MaxConnections), &s.CxOpen}
	c.limits.pending = resource{&s.UpstreamRqPendingActive, or(cfg.MaxPendingRequests), &s.RqPendingOpen}
	c.limits.rq = resource{&s.UpstreamRqActive, or(cfg.MaxRequests), &s.RqOpen}
	c.limits.retries = resource{&c.limits.retriesActive, int64(cfg.MaxRetries), &s.RqRetryOpen}
}

// TryRequest takes one of the cluster's max_requests for a request about to
// be sent; false (counted as upstream_rq_pending_overflow, as Envoy counts
// it) means the limit is reached. Each true is paired with EndRequest.
func (c *Cluster) TryRequest() bool {
	if !c.limits.rq.take() {
		c.stats.UpstreamRqPendingOverflow.Add(1)
		return false
	}
	c.stats.UpstreamRqTotal.Add(1)
	return true
}

// EndRequest gives back a request taken with TryRequest.
func (c *Cluster) EndRequest() { c.limits.rq.give() }

// TryPending takes one of max_pending_requests for a request that waits
// for a connection (one being dialled, or a free one when max_connections
// is reached); false (upstream_rq_pending_overflow) means the limit is
// reached. Each true is paired with EndPending.
func (c *Cluster) TryPending() bool {
	if !c.limits.pending.take() {
		c.stats.UpstreamRqPendingOverflow.Add(1)
		return false
	}
	return true
}

// EndPending gives back a pending request taken with TryPending.
func (c *Cluster) EndPending() { c.limits.pending.give() }

// TryConnection takes one of max_connections for a connection about to be
// dialled; false (upstream_cx_overflow) means the limit is reached. Each
// true is paired with EndConnection when the connection closes.
func (c *Cluster) TryConnection() bool {
	if !c.limits.cx.take() {
		c.stats.UpstreamCxOverflow.Add(1)
		return false
	}
	return true
}

// ForceConnection takes one of max_connections over the limit, after
// TryConnection refused it, for a pool that has no connection at all: as
// Envoy's pools do, so that requests waiting for that host are not left
// with no connection that could ever free up for them. It is paired with
// EndConnection like a true TryConnection.
func (c *Cluster) ForceConnection() { c.limits.cx.n.Add(1) }

// EndConnection gives back a connection taken with TryConnection.
func (c *Cluster) EndConnection() { c.limits.cx.give() }

// TryRetry takes one of max_retries for a retry; false
// (upstream_rq_retry_overflow) means the limit is reached. Each true is
// paired with EndRetry when the retry's attempt ends.
func (c *Cluster) TryRetry() bool {
	if !c.limits.retries.take() {
		c.stats.UpstreamRqRetryOverflow.Add(1)
		return false
	}
	c.stats.UpstreamRqRetry.Add(1)
	return true
}

// EndRetry gives back a retry taken with TryRetry.
func (c *Cluster) EndRetry() { c.limits.retries.give() }

// EndPendingN gives back n pending requests.
func (c *Cluster) EndPendingN(n int) {
	for range n {
		c.limits.pending.give()
	}
}

// Thresholds are the circuit breaker limits in force.
type Thresholds struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries int64
}

// Thresholds returns the cluster's limits.
func (c *Cluster) Thresholds() Thresholds {
	l := &c.limits
	return Thresholds{l.cx.max, l.pending.max, l.rq.max, l.retries.max}
}
