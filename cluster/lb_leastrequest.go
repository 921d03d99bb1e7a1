package cluster

import (
	"math/rand/v2"
	"sync"
	"time"
)

// choiceCount is Envoy's least_request_lb_config.choice_count default.
const choiceCount = 2

// newLeastRequest is LEAST_REQUEST as Envoy runs it with its defaults
// (choice_count 2, active_request_bias 1.0): when every host has the same
// weight, the power of two choices; otherwise an EDF scheduler whose host
// weights are weight / (active requests + 1), computed when a host is
// (re)scheduled.
func newLeastRequest(hosts []*Host, weights []uint32) Balancer {
	if uniform(weights) {
		return &leastRequest{hosts: hosts}
	}
	b := &weightedLeastRequest{hosts: hosts, weight: make([]float64, len(hosts)), heap: make([]edfEntry, len(hosts))}
	for i, w := range weights {
		b.weight[i] = float64(weightOf(w))
		b.heap[i] = edfEntry{deadline: 1 / b.effective(i), seq: b.seq, host: i}
		b.seq++
	}
	for i := len(b.heap)/2 - 1; i >= 0; i-- {
		b.down(i)
	}
	return b
}

// leastRequest draws choiceCount usable hosts at random (with replacement,
// as Envoy) and takes the one with the fewest requests in flight, the first
// drawn on a tie.
type leastRequest struct{ hosts []*Host }

func (b *leastRequest) Pick(now time.Time, c LBContext) *Host {
	n := uint64(len(b.hosts))
	var best *Host
	for got, draws := 0, 0; got < choiceCount && draws < 2*choiceCount; draws++ {
		h := b.hosts[rand.Uint64N(n)]
		if !c.usable(h, now) {
			continue
		}
		got++
		if best == nil || h.Active() < best.Active() {
			best = h
		}
	}
	if best != nil {
		return best
	}
	return pickRandom(b.hosts, now, c)
}

// weightedLeastRequest is Envoy's EdfScheduler::pickAndAdd with
// LeastRequestLoadBalancer::hostWeight: the host with the earliest deadline
// is picked and rescheduled at that deadline + 1/weight, its weight divided
// by its requests in flight + 1. Ties go to the host scheduled first.
type weightedLeastRequest struct {
	mu     sync.Mutex
	hosts  []*Host
	weight []float64
	heap   []edfEntry // a min-heap by (deadline, seq)
	clock  float64    // Envoy's current_time_: the last deadline picked
	seq    uint64     // Envoy's order_offset_
}

type edfEntry struct {
	deadline float64
	seq      uint64
	host     int
}

func (b *weightedLeastRequest) Pick(now time.Time, c LBContext) *Host {
	b.mu.Lock()
	// A host that is not usable is rescheduled as if picked, and the next
	// one is tried: at most one round of the hosts.
	for range len(b.hosts) {
		h := b.pickAndAdd()
		if c.usable(h, now) {
			b.mu.Unlock()
			return h
		}
	}
	b.mu.Unlock()
	return pickRandom(b.hosts, now, c)
}

func (b *weightedLeastRequest) pickAndAdd() *Host {
	e := &b.heap[0]
	b.clock = e.deadline
	e.deadline = b.clock + 1/b.effective(e.host)
	e.seq = b.seq
	b.seq++
	i := e.host
	b.down(0)
	return b.hosts[i]
}

// effective is Envoy's hostWeight with active_request_bias 1.0.
func (b *weightedLeastRequest) effective(i int) float64 {
	return b.weight[i] / float64(max(b.hosts[i].Active(), 0)+1)
}

func (b *weightedLeastRequest) less(i, j int) bool {
	x, y := &b.heap[i], &b.heap[j]
	return x.deadline < y.deadline || x.deadline == y.deadline && x.seq < y.seq
}

func (b *weightedLeastRequest) down(i int) {
	n := len(b.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && b.less(r, l) {
			m = r
		}
		if !b.less(m, i) {
			return
		}
		b.heap[i], b.heap[m] = b.heap[m], b.heap[i]
		i = m
	}
}
