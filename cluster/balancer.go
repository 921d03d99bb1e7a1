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
}

// Balancer picks hosts of one host set. Implementations are safe for
// concurrent use, allocation-free per Pick, and built once per host set
// (hosts and balancer state are swapped together). The context is passed
// by value so that it never escapes to the heap through the interface.
type Balancer interface {
	Pick(now time.Time, c LBContext) *Host
}

// Pick chooses a host for a request (ctx may be nil). It skips hosts that
// are not Healthy(now) and ctx.Exclude; when no host is left it uses the
// unhealthy ones anyway (Envoy's panic mode, so that a cluster whose hosts
// all failed recovers as soon as one is back), still preferring one that is
// not ctx.Exclude. A cluster of one host always returns it. Pick returns nil
// only when the cluster has no hosts.
//
// Envoy enters panic mode below 50 % healthy hosts (healthy_panic_threshold);
// metaproxy only when no host is usable.
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
	return hs.lb.Pick(now, lc)
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

// usable reports whether a balancer may return h for a request avoiding ex.
func usable(h *Host, now time.Time, ex *Host) bool { return h != ex && h.Healthy(now) }

// scanUsable returns the first usable host from hosts[start%n] on, or nil.
func scanUsable(hosts []*Host, start uint64, now time.Time, ex *Host) *Host {
	n := uint64(len(hosts))
	for i := range n {
		if h := hosts[(start+i)%n]; usable(h, now, ex) {
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
