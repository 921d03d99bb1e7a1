package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Host is one resolved endpoint ("ip:port") with its live state.
type Host struct {
	// Addr is the literal "ip:port" dialled.
	Addr string
	// Weight is the load-balancing weight the host was created with (an
	// Update that keeps the host with another weight balances by the new one).
	Weight uint32

	active      atomic.Int64  // requests in flight, for LEAST_REQUEST
	failures    atomic.Int32  // consecutive connect failures
	ejectedTill atomic.Int64  // unix nanos; connect back-off
	dialAfter   atomic.Int64  // unix nanos; no connect attempt before
	flags       atomic.Uint32 // health flags (health.go)
	outlier     outlierState  // outlier detection (outlier.go)
	left        atomic.Bool   // the host left its cluster's host set (for good)
}

// Left reports whether h has left its cluster's host set: an update
// removed it. A host that left never comes back (an address that returns
// gets a new Host), so a request that picked h before the update must
// pick again.
func (h *Host) Left() bool { return h.left.Load() }

// Active returns the number of requests in flight to h.
func (h *Host) Active() int64 { return h.active.Load() }

// Begin and End count a request in flight to h.
func (h *Host) Begin() { h.active.Add(1) }

// End marks the end of a request begun with Begin.
func (h *Host) End() { h.active.Add(-1) }

// Healthy reports whether h may be picked at now: it passes its health
// checks, is not ejected by outlier detection and does not back off after
// connect failures.
func (h *Host) Healthy(now time.Time) bool { return h.flags.Load() == 0 && h.reachable(now) }

// reachable reports whether h does not back off after connect failures.
func (h *Host) reachable(now time.Time) bool { return h.ejectedTill.Load() <= now.UnixNano() }

// Connect back-off after consecutive connect failures: the first retry
// waits about ConnectBackoffBase, each further failure doubles the wait up
// to ConnectBackoffMax, and every wait is jittered to 50-100 % so that many
// proxies do not probe a recovering host in step.
const (
	ConnectBackoffBase = 100 * time.Millisecond
	ConnectBackoffMax  = 5 * time.Second
)

// ConnectFailed records a connect failure: the host is skipped by the
// balancer and not dialled again for a back-off that doubles with each
// consecutive failure (see ConnectBackoffBase), so a dead provider costs a
// few dials a second, not one per request, even when the balancer has to
// pick it (a cluster of one host, or every host down).
func (h *Host) ConnectFailed(now time.Time) {
	n := h.failures.Add(1)
	back := min(ConnectBackoffBase<<min(n-1, 16), ConnectBackoffMax)
	back = back/2 + rand.N(back/2+1)
	till := now.Add(back).UnixNano()
	h.ejectedTill.Store(till)
	h.dialAfter.Store(till)
}

// ConnectSucceeded clears the failure record.
func (h *Host) ConnectSucceeded() {
	if h.failures.Load() != 0 {
		h.failures.Store(0)
		h.ejectedTill.Store(0)
		h.dialAfter.Store(0)
	}
}

// TryConnect reports whether a new connection to h may be attempted at
// now. While h backs off after connect failures it says no; when the
// back-off ends, one caller is let through to probe the host and the others
// keep waiting until that attempt succeeds or fails (another back-off).
// The probe holds the host for hold (its connect timeout): a probe whose
// outcome is never reported cannot block the host for good.
func (h *Host) TryConnect(now time.Time, hold time.Duration) bool {
	after := h.dialAfter.Load()
	if after == 0 {
		return true
	}
	t := now.UnixNano()
	if t < after {
		return false
	}
	return h.dialAfter.CompareAndSwap(after, t+int64(max(hold, ConnectBackoffBase)))
}

// BackingOff returns how long h still refuses connect attempts at now.
func (h *Host) BackingOff(now time.Time) time.Duration {
	return max(time.Duration(h.dialAfter.Load()-now.UnixNano()), 0)
}

// ConnectFailures returns the number of consecutive connect failures.
func (h *Host) ConnectFailures() int { return int(h.failures.Load()) }

// Cluster is a named set of hosts with a balancer.
type Cluster struct {
	cfg    Config
	set    atomic.Pointer[hostSet]
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex // serialises host set swaps; guards watchers
	watchers []watcher
	watchSeq uint64

	stats    Stats
	rqTime   prometheus.Histogram
	limits   Limits
	outliers *detector      // nil without outlier_detection
	checks   *healthChecker // nil without health_checks
}

// Name returns the cluster name.
func (c *Cluster) Name() string { return c.cfg.Name }

// ConnectTimeout returns the cluster's connect timeout.
func (c *Cluster) ConnectTimeout() time.Duration { return c.cfg.ConnectTimeout }

// Hosts returns the current hosts. The slice must not be modified.
func (c *Cluster) Hosts() []*Host { return c.set.Load().hosts }

// New builds a cluster. STATIC clusters need IP literals; STRICT_DNS clusters
// resolve their hosts now and every DNSRefreshRate until Close; EDS
// clusters start with cfg.Endpoints (none when parsed), and get theirs
// through Update. New builds routed clusters: it refuses upstream TLS and
// pipe (unix socket) endpoints, which only management-server clusters have.
func New(cfg Config, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkLB(&cfg); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", cfg.Name, err)
	}
	if cfg.TLS != nil {
		return nil, fmt.Errorf("cluster %q: upstream TLS (transport_socket) is not supported for routed clusters: in Envoy, TLS belongs to the plainText cluster", cfg.Name)
	}
	for _, ep := range cfg.Endpoints {
		if ep.Path != "" {
			return nil, fmt.Errorf("cluster %q: endpoint %q is a pipe (unix socket): routed clusters need socket addresses; pipes are for management-server clusters", cfg.Name, ep.Path)
		}
	}
	c := &Cluster{cfg: cfg, log: log.With("cluster", cfg.Name)}
	c.initLimits()
	c.rqTime = newRqTime(cfg.Name)
	if cfg.OutlierDetection != nil {
		c.outliers = newDetector(c, *cfg.OutlierDetection)
	}
	if cfg.HealthCheck != nil {
		c.checks = newHealthChecker(c, cfg.HealthCheck)
	}
	c.set.Store(&hostSet{lb: none{}})
	switch cfg.Type {
	case StrictDNS:
		ms, err := resolve(context.Background(), cfg.Endpoints)
		if err != nil {
			c.log.Warn("initial DNS resolution failed; retrying", "err", err)
		}
		c.swap(ms)
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go c.refresh(ctx)
	default: // STATIC and EDS
		ms, err := staticMembers(cfg.Name, cfg.Endpoints)
		if err != nil {
			return nil, err
		}
		c.swap(ms)
	}
	return c, nil
}

func (c *Cluster) refresh(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.cfg.DNSRefreshRate)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ms, err := resolve(ctx, c.cfg.Endpoints)
		if err != nil {
			c.log.Warn("DNS refresh failed; keeping previous hosts", "err", err)
			continue
		}
		c.swap(ms)
	}
}

// resolve looks every endpoint up. It fails only when no endpoint resolved
// and one failed.
func resolve(ctx context.Context, eps []Endpoint) ([]member, error) {
	var out []member
	var firstErr error
	for _, ep := range eps {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", ep.Host)
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, ip := range ips {
			addr := net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(ep.Port))
			out = append(out, member{addr: addr, key: hashKey(ep, addr), weight: ep.Weight})
		}
	}
	if len(out) == 0 && firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// Close stops DNS refresh, health checks and outlier detection.
func (c *Cluster) Close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	if c.checks != nil {
		c.checks.close()
	}
	if c.outliers != nil {
		c.outliers.close()
	}
}
