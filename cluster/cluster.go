package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Host is one resolved endpoint ("ip:port") with its live state.
type Host struct {
	// Addr is the literal "ip:port" dialled.
	Addr string
	// Weight is the load-balancing weight.
	Weight uint32

	active      atomic.Int64 // requests in flight, for LEAST_REQUEST
	failures    atomic.Int32 // consecutive connect failures
	ejectedTill atomic.Int64 // unix nanos; passive health
	dialAfter   atomic.Int64 // unix nanos; no connect attempt before
}

// Active returns the number of requests in flight to h.
func (h *Host) Active() int64 { return h.active.Load() }

// Begin and End count a request in flight to h.
func (h *Host) Begin() { h.active.Add(1) }

// End marks the end of a request begun with Begin.
func (h *Host) End() { h.active.Add(-1) }

// Healthy reports whether h is not ejected at now.
func (h *Host) Healthy(now time.Time) bool { return h.ejectedTill.Load() <= now.UnixNano() }

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
	hosts  atomic.Pointer[[]*Host]
	rr     atomic.Uint64
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// Name returns the cluster name.
func (c *Cluster) Name() string { return c.cfg.Name }

// ConnectTimeout returns the cluster's connect timeout.
func (c *Cluster) ConnectTimeout() time.Duration { return c.cfg.ConnectTimeout }

// Hosts returns the current hosts. The slice must not be modified.
func (c *Cluster) Hosts() []*Host { return *c.hosts.Load() }

// Pick chooses a host for a request, skipping ejected hosts. When every host
// is ejected it still picks one (Envoy's panic mode) so that a cluster whose
// hosts all failed recovers as soon as one is back. It returns nil only when
// the cluster has no hosts at all.
func (c *Cluster) Pick(now time.Time) *Host {
	hosts := *c.hosts.Load()
	n := len(hosts)
	switch n {
	case 0:
		return nil
	case 1:
		return hosts[0]
	}
	switch c.cfg.LBPolicy {
	case "LEAST_REQUEST":
		// Power of two choices among healthy hosts.
		var best *Host
		for range 2 {
			h := hosts[rand.IntN(n)]
			if !h.Healthy(now) {
				continue
			}
			if best == nil || h.Active() < best.Active() {
				best = h
			}
		}
		if best != nil {
			return best
		}
	case "RANDOM":
		for range n {
			if h := hosts[rand.IntN(n)]; h.Healthy(now) {
				return h
			}
		}
	default:
		start := c.rr.Add(1)
		for i := range uint64(n) {
			if h := hosts[(start+i)%uint64(n)]; h.Healthy(now) {
				return h
			}
		}
	}
	return hosts[c.rr.Add(1)%uint64(n)]
}

// New builds a cluster. STATIC clusters need IP literals; STRICT_DNS clusters
// resolve their hosts now and every DNSRefreshRate until Close.
func New(cfg Config, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{cfg: cfg, log: log.With("cluster", cfg.Name)}
	empty := []*Host{}
	c.hosts.Store(&empty)
	switch cfg.Type {
	case StrictDNS:
		hosts, err := resolve(context.Background(), cfg.Endpoints, nil)
		if err != nil {
			c.log.Warn("initial DNS resolution failed; retrying", "err", err)
		}
		c.hosts.Store(&hosts)
		ctx, cancel := context.WithCancel(context.Background())
		c.cancel, c.done = cancel, make(chan struct{})
		go c.refresh(ctx)
	default:
		hosts := make([]*Host, 0, len(cfg.Endpoints))
		for _, ep := range cfg.Endpoints {
			ip, err := netip.ParseAddr(ep.Host)
			if err != nil {
				return nil, fmt.Errorf("cluster %q: STATIC endpoint %q is not an IP address (use type STRICT_DNS for host names)", cfg.Name, ep.Host)
			}
			hosts = append(hosts, &Host{Addr: netip.AddrPortFrom(ip, uint16(ep.Port)).String(), Weight: ep.Weight})
		}
		hosts = expandWeights(hosts)
		c.hosts.Store(&hosts)
	}
	return c, nil
}

// expandWeights repeats hosts by weight (bounded) so round robin honours
// weights without per-pick arithmetic.
func expandWeights(hosts []*Host) []*Host {
	uniform := true
	for _, h := range hosts {
		if h.Weight > 1 {
			uniform = false
		}
	}
	if uniform {
		return hosts
	}
	var out []*Host
	for _, h := range hosts {
		for range min(h.Weight, 128) {
			out = append(out, h)
		}
	}
	return out
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
		hosts, err := resolve(ctx, c.cfg.Endpoints, *c.hosts.Load())
		if err != nil {
			c.log.Warn("DNS refresh failed; keeping previous hosts", "err", err)
			continue
		}
		c.hosts.Store(&hosts)
	}
}

// resolve looks every endpoint up, keeping the Host objects (and their
// health) of addresses that did not change.
func resolve(ctx context.Context, eps []Endpoint, prev []*Host) ([]*Host, error) {
	old := make(map[string]*Host, len(prev))
	for _, h := range prev {
		old[h.Addr] = h
	}
	var out []*Host
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
			h := old[addr]
			if h == nil {
				h = &Host{Addr: addr, Weight: ep.Weight}
			}
			out = append(out, h)
		}
	}
	if len(out) == 0 && firstErr != nil {
		return prev, firstErr
	}
	return expandWeights(out), nil
}

// Close stops DNS refresh.
func (c *Cluster) Close() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

// Set is the clusters of one configuration, by name.
type Set struct {
	mu sync.RWMutex
	m  map[string]*Cluster
}

// NewSet builds every cluster of cfgs.
func NewSet(cfgs []Config, log *slog.Logger) (*Set, error) {
	s := &Set{m: make(map[string]*Cluster, len(cfgs))}
	for _, cfg := range cfgs {
		if _, dup := s.m[cfg.Name]; dup {
			s.Close()
			return nil, fmt.Errorf("cluster %q is defined twice", cfg.Name)
		}
		c, err := New(cfg, log)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.m[cfg.Name] = c
	}
	return s, nil
}

// Get returns the cluster called name.
func (s *Set) Get(name string) *Cluster {
	s.mu.RLock()
	c := s.m[name]
	s.mu.RUnlock()
	return c
}

// Close closes every cluster.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.m {
		c.Close()
	}
}
