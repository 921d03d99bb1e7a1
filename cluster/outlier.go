package cluster

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Outlier detection, as Envoy's consecutive-failure detectors: every
// answer or failure of a request to a host is reported (Report); a host
// whose consecutive failures of one kind reach the kind's threshold is
// ejected at once (FailedOutlierCheck) unless that would take the
// cluster's ejected hosts over max_ejection_percent; every interval the
// detector returns the hosts whose ejection time has passed. The
// ejection time grows with the number of times a host was ejected
// (base_ejection_time × n, at most max_ejection_time) and shrinks again,
// one step per interval, while it stays healthy.

// Result is how an attempt at a host ended, as outlier detection counts it
// (Envoy's Outlier::Result).
type Result uint8

// Results.
const (
	// ResultSuccess: an answer that is not a server failure (an application
	// error included: the server worked).
	ResultSuccess Result = iota
	// ResultServerFailure: the server failed the call (Envoy's 5xx).
	ResultServerFailure
	// ResultConnectFailed: no connection, or it was reset with the request
	// on it (Envoy's local-origin connect failure, counted as a 503).
	ResultConnectFailed
	// ResultTimeout: no answer in time (local-origin timeout, a 504).
	ResultTimeout
	// ResultConnectSuccess: a connection to the host was established.
	ResultConnectSuccess
	// ResultNone: nothing to count (the proxy's own failure).
	ResultNone
)

// outlierState is a host's record.
type outlierState struct {
	fivexx, gateway, local atomic.Uint32 // consecutive failures of each kind
	// Guarded by the detector's lock:
	ejections   uint32 // the ejection time multiplier
	ejectedTill int64  // unix nanos; set while ejected
}

// detector runs a cluster's outlier detection.
type detector struct {
	c    *Cluster
	cfg  OutlierDetection
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// failure kinds, for stats and enforcement.
type outlierKind uint8

const (
	kind5xx outlierKind = iota
	kindGateway
	kindLocal
)

func newDetector(c *Cluster, cfg OutlierDetection) *detector {
	d := &detector{c: c, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *detector) close() {
	close(d.stop)
	<-d.done
}

func (d *detector) run() {
	defer close(d.done)
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.tick(now)
		}
	}
}

// Report records how an attempt at h ended. It costs an atomic add or two
// and nothing at all for a cluster without outlier detection. As Envoy's
// DetectorHostMonitorImpl::putResult: without split_external_local_origin_errors
// local-origin failures count as gateway failures and 5xx (a connect
// failure as a 503, a timeout as a 504) and a connection established
// counts for nothing; with it they count only as local-origin failures
// (and a server failure as a 503).
func (c *Cluster) Report(h *Host, r Result) {
	d := c.outliers
	if d == nil || r == ResultNone {
		return
	}
	o, cfg := &h.outlier, &d.cfg
	if cfg.SplitExternalLocalOriginErrors {
		switch r {
		case ResultConnectFailed, ResultTimeout:
			if o.local.Add(1) == cfg.ConsecutiveLocalOriginFailure {
				d.consecutive(h, kindLocal)
			}
		case ResultConnectSuccess:
			resetCount(&o.local)
		case ResultSuccess:
			resetCount(&o.local)
			d.response(h, false, false)
		case ResultServerFailure:
			d.response(h, true, true)
		}
		return
	}
	switch r {
	case ResultSuccess:
		d.response(h, false, false)
	case ResultServerFailure:
		d.response(h, true, false)
	case ResultConnectFailed, ResultTimeout:
		d.response(h, true, true)
	}
}

// response counts an answer as Envoy's putHttpResponseCode: fivexx for a
// 5xx, gateway for a 502-504.
func (d *detector) response(h *Host, fivexx, gateway bool) {
	o, cfg := &h.outlier, &d.cfg
	if !fivexx {
		resetCount(&o.fivexx)
		resetCount(&o.gateway)
		return
	}
	if !gateway {
		resetCount(&o.gateway)
	} else if o.gateway.Add(1) == cfg.ConsecutiveGatewayFailure {
		d.consecutive(h, kindGateway)
	}
	if o.fivexx.Add(1) == cfg.Consecutive5xx {
		d.consecutive(h, kind5xx)
	}
}

// resetCount zeroes n, without a write when it is zero already (the
// common case: the line stays shared between cores).
func resetCount(n *atomic.Uint32) {
	if n.Load() != 0 {
		n.Store(0)
	}
}

// consecutive handles h reaching the threshold of kind k.
func (d *detector) consecutive(h *Host, k outlierKind) {
	s := &d.c.stats
	detected, enforced, pct := &s.EjectionsDetectedConsecutive5xx, &s.EjectionsEnforcedConsecutive5xx, d.cfg.EnforcingConsecutive5xx
	switch k {
	case kindGateway:
		detected, enforced, pct = &s.EjectionsDetectedGatewayFailure, &s.EjectionsEnforcedGatewayFailure, d.cfg.EnforcingConsecutiveGatewayFailure
	case kindLocal:
		detected, enforced, pct = &s.EjectionsDetectedLocalOriginFailure, &s.EjectionsEnforcedLocalOriginFailure, d.cfg.EnforcingConsecutiveLocalOriginFailure
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if h.flags.Load()&FailedOutlierCheck != 0 {
		return
	}
	detected.Add(1)
	if pct < 100 && rand.Uint32N(100) >= pct {
		return
	}
	hosts := d.c.Hosts()
	ejected := countEjected(hosts)
	if 100*(ejected+1) > int(d.cfg.MaxEjectionPercent)*len(hosts) && !(d.cfg.AlwaysEjectOneHost && ejected == 0) {
		s.EjectionsOverflow.Add(1)
		return
	}
	o := &h.outlier
	if time.Duration(o.ejections)*d.cfg.BaseEjectionTime < d.cfg.MaxEjectionTime+d.cfg.BaseEjectionTime {
		o.ejections++ // the back-off stops growing once it reaches max_ejection_time
	}
	now := time.Now()
	o.ejectedTill = now.Add(d.ejectionTime(o.ejections)).UnixNano()
	o.fivexx.Store(0)
	o.gateway.Store(0)
	o.local.Store(0)
	d.c.setHealth(h, FailedOutlierCheck, true)
	enforced.Add(1)
	s.EjectionsEnforcedTotal.Add(1)
	s.EjectionsActive.Store(int64(ejected + 1))
	d.c.log.Info("outlier detection: host ejected", "host", h.Addr, "kind", [...]string{"consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure"}[k],
		"ejections", o.ejections, "until", time.Unix(0, o.ejectedTill).Format(time.RFC3339Nano))
}

// ejectionTime is how long the n-th ejection in a row lasts.
func (d *detector) ejectionTime(n uint32) time.Duration {
	t := d.cfg.BaseEjectionTime * time.Duration(n)
	if limit := max(d.cfg.BaseEjectionTime, d.cfg.MaxEjectionTime); t > limit || t < 0 {
		t = limit
	}
	if j := d.cfg.MaxEjectionTimeJitter; j > 0 {
		t += rand.N(j + 1)
	}
	return t
}

// tick returns the ejected hosts whose time has passed and shrinks, by one
// a tick, the back-off of hosts that are not ejected.
func (d *detector) tick(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := now.UnixNano()
	hosts := d.c.Hosts()
	for _, h := range hosts {
		o := &h.outlier
		if h.flags.Load()&FailedOutlierCheck == 0 {
			if o.ejections > 0 {
				o.ejections--
			}
			continue
		}
		if o.ejectedTill <= t {
			d.c.setHealth(h, FailedOutlierCheck, false)
			d.c.log.Info("outlier detection: host returned", "host", h.Addr)
		}
	}
	d.c.stats.EjectionsActive.Store(int64(countEjected(hosts)))
}

func countEjected(hosts []*Host) int {
	n := 0
	for _, h := range hosts {
		if h.flags.Load()&FailedOutlierCheck != 0 {
			n++
		}
	}
	return n
}

// activeCheckPassed returns h from an ejection when an active health check
// of it passed and it has not failed active health checking, as Envoy's
// successful_active_health_check_uneject_host.
func (c *Cluster) activeCheckPassed(h *Host) {
	d := c.outliers
	if d == nil || !d.cfg.SuccessfulActiveHealthCheckUnejectHost || h.flags.Load() != FailedOutlierCheck {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c.setHealth(h, FailedOutlierCheck, false) {
		d.c.stats.EjectionsActive.Store(int64(countEjected(d.c.Hosts())))
		d.c.log.Info("outlier detection: host returned: an active health check passed", "host", h.Addr)
	}
}
