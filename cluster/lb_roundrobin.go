package cluster

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// maxSmoothHosts is the most hosts smooth weighted round robin serves: its
// pick walks every host, so larger sets use Envoy's EDF scheduler (edf.go),
// O(log n) a pick, with the same proportions.
const maxSmoothHosts = 64

// newRoundRobin is ROUND_ROBIN: a lock-free counter when every host has the
// same weight (as Envoy, which skips its EDF scheduler then), smooth
// weighted round robin otherwise (Envoy's EDF scheduler beyond
// maxSmoothHosts hosts). Both start at a random point, as Envoy
// does, so that proxies started together do not all send their first
// requests to the same host.
func newRoundRobin(hosts []*Host, weights []uint32) Balancer {
	if uniform(weights) {
		b := &roundRobin{hosts: hosts}
		b.next.Store(rand.Uint64())
		return b
	}
	if len(hosts) > maxSmoothHosts {
		return newEDF(hosts, weights, false)
	}
	b := &weightedRoundRobin{hosts: hosts, weight: make([]int64, len(hosts)), current: make([]int64, len(hosts))}
	for i, w := range weights {
		b.weight[i] = int64(weightOf(w))
	}
	for range rand.IntN(len(hosts)) {
		b.next(time.Time{}, LBContext{}, false)
	}
	return b
}

// roundRobin takes the hosts in turn. An unusable host's turn is skipped,
// not given to its neighbour: the pick takes the next turn, so that the
// usable hosts share the turns evenly (as Envoy, which balances over its
// list of healthy hosts) rather than the host after an ejected one getting
// twice its share.
type roundRobin struct {
	hosts []*Host
	next  atomic.Uint64
}

func (b *roundRobin) Pick(now time.Time, c LBContext) *Host {
	n := uint64(len(b.hosts))
	start := b.next.Add(1)
	if h := b.hosts[start%n]; c.usable(h, now) {
		return h
	}
	for range n - 1 {
		if h := b.hosts[b.next.Add(1)%n]; c.usable(h, now) {
			return h
		}
	}
	if h := scanUsable(b.hosts, start, now, c); h != nil { // the turns raced on
		return h
	}
	// No usable host: the turns taken above advance the counter by n each
	// time, so spread the fallback at random.
	return notExcluded(b.hosts, rand.Uint64(), c.Exclude)
}

// weightedRoundRobin is smooth weighted round robin (nginx's): each pick
// adds every candidate's weight to its current value and takes the largest,
// which then gives back the candidates' total. Over every run of W picks
// (W the sum of the weights) each host is picked exactly weight times, and
// picks of a heavy host are spread out, not bunched. Hosts that are not
// usable sit the round out, so the others share their turns by weight.
// Envoy uses an EDF scheduler instead, with the same proportions.
type weightedRoundRobin struct {
	mu      sync.Mutex
	hosts   []*Host
	weight  []int64
	current []int64
}

func (b *weightedRoundRobin) Pick(now time.Time, c LBContext) *Host {
	if h := b.next(now, c, true); h != nil {
		return h
	}
	// Panic mode: every host is unhealthy; balance over them all by weight.
	if h := b.next(now, c, false); h != nil {
		return h
	}
	return b.hosts[0]
}

// next runs one round over the hosts other than ex (and, if healthy, only
// the Healthy(now) ones); nil if there are none.
func (b *weightedRoundRobin) next(now time.Time, c LBContext, healthy bool) *Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	best := -1
	var total int64
	for i, h := range b.hosts {
		if h == c.Exclude || healthy && !c.usable(h, now) {
			continue
		}
		b.current[i] += b.weight[i]
		total += b.weight[i]
		if best < 0 || b.current[i] > b.current[best] {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b.current[best] -= total
	return b.hosts[best]
}
