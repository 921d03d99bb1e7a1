package cluster

import (
	"math/bits"
	"time"

	"github.com/cespare/xxhash/v2"
)

// LBContext is what a balancer may know of the request being balanced.
type LBContext struct {
	Hash    uint64 // the request's hash key (route hash_policy); valid when HasHash
	HasHash bool
	Exclude *Host // a host to avoid (a retry's failed host); nil for none
	// Sticky: the hash's own host, healthy or not. For sharded data stores
	// (Redis shards) a key lives on its host: when that host is down its
	// keys must fail, not move to a host that does not have them.
	Sticky bool
	// panic: too few hosts are healthy (healthy_panic_threshold), so
	// health checks and outlier ejections are ignored (Cluster.Pick sets it).
	panic bool
}

// Balancer picks hosts of one host set. Implementations are safe for
// concurrent use, allocation-free per Pick, and built once per host set
// (hosts and balancer state are swapped together). The context is passed
// by value so that it never escapes to the heap through the interface.
type Balancer interface {
	Pick(now time.Time, c LBContext) *Host
}

// Pick chooses a host for a request (ctx may be nil). It skips hosts that
// are not Healthy(now) and ctx.Exclude. As Envoy, when the share of hosts
// that pass health checks and are not ejected falls below the cluster's
// healthy_panic_threshold (50 % by default), the cluster is in panic mode
// and balances over every host, health aside; and when no host is usable
// it uses the others anyway (so that a cluster whose hosts all failed
// recovers as soon as one is back), still preferring one that is not
// ctx.Exclude. A cluster of one host always returns it. Pick returns nil
// only when the cluster has no hosts.
func (c *Cluster) Pick(now time.Time, ctx *LBContext) *Host {
	hs := c.set.Load()
	switch len(hs.hosts) {
	case 0:
		return nil
	case 1:
		return hs.hosts[0]
	}
	var lc LBContext
	if ctx != nil {
		lc = *ctx
	}
	if d := hs.unhealthy.Load(); d > 0 {
		if lc.panic = c.panics(len(hs.hosts), int(d)); lc.panic {
			c.stats.LBHealthyPanic.Add(1)
		}
	}
	return hs.lb.Pick(now, lc)
}

// panics reports whether n hosts of which unhealthy fail health checks or
// are ejected are below the healthy panic threshold.
func (c *Cluster) panics(n, unhealthy int) bool {
	return 100*float64(n-unhealthy) < c.cfg.PanicThreshold*float64(n)
}

// HashString is Envoy's HashUtil::xxHash64(s): xxHash64 with seed 0.
func HashString(s string) uint64 { return xxhash.Sum64String(s) }

// CombineHash folds h, the hash of one hash policy part, into acc, the
// hash of the parts before it (first: h is the first part that produced a
// hash), as Envoy's HashPolicyImpl::generateHash does: the accumulated value
// is rotated left by one bit before the XOR, so duplicate parts do not
// cancel out.
func CombineHash(acc uint64, h uint64, first bool) uint64 {
	if first {
		return h
	}
	return bits.RotateLeft64(acc, 1) ^ h
}

// usable reports whether a balancer may return h for the request of c: not
// c.Exclude, and healthy (in panic mode: not backing off after connect
// failures, health checks and ejections aside).
func (c *LBContext) usable(h *Host, now time.Time) bool {
	if h == c.Exclude {
		return false
	}
	if c.Sticky {
		return true
	}
	if c.panic {
		return h.reachable(now)
	}
	return h.Healthy(now)
}

// scanUsable returns the first usable host from hosts[start%n] on, or nil.
func scanUsable(hosts []*Host, start uint64, now time.Time, c LBContext) *Host {
	n := uint64(len(hosts))
	for i := range n {
		if h := hosts[(start+i)%n]; c.usable(h, now) {
			return h
		}
	}
	return nil
}

// notExcluded is panic mode's pick: the first host from hosts[start%n] on
// that is not ex, health aside; hosts[start%n] if every host is ex.
func notExcluded(hosts []*Host, start uint64, ex *Host) *Host {
	n := uint64(len(hosts))
	for i := range n {
		if h := hosts[(start+i)%n]; h != ex {
			return h
		}
	}
	return hosts[start%n]
}

// weightOf is a host's balancing weight: Envoy requires at least 1.
func weightOf(w uint32) uint64 { return max(uint64(w), 1) }

// uniform reports whether every weight is the same.
func uniform(weights []uint32) bool {
	for _, w := range weights {
		if weightOf(w) != weightOf(weights[0]) {
			return false
		}
	}
	return true
}

// none is the balancer of an empty host set.
type none struct{}

func (none) Pick(time.Time, LBContext) *Host { return nil }

// newBalancer builds the balancer of cfg's policy for one host set; keys
// are the hosts' hash keys (RING_HASH, MAGLEV). cfg was checked by
// checkLB, so this cannot fail.
func newBalancer(cfg *Config, hosts []*Host, weights []uint32, keys []string) Balancer {
	if len(hosts) == 0 {
		return none{}
	}
	switch cfg.LBPolicy {
	case "RANDOM":
		return newRandom(hosts)
	case "LEAST_REQUEST":
		return newLeastRequest(hosts, weights)
	case "RING_HASH":
		minSize, maxSize := ringSizes(cfg)
		return newRingHash(hosts, weights, keys, minSize, maxSize)
	case "MAGLEV":
		return newMaglev(hosts, weights, keys, maglevSize(cfg))
	default:
		return newRoundRobin(hosts, weights)
	}
}
