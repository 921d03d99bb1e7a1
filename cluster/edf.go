package cluster

import (
	"sync"
	"time"
)

// edf is Envoy's EdfScheduler::pickAndAdd: the host with the earliest
// deadline is picked and rescheduled at that deadline + 1/weight; ties go
// to the host scheduled first. A pick costs O(log n). byActive divides a
// host's weight by its requests in flight + 1 when it is scheduled
// (LeastRequestLoadBalancer::hostWeight with active_request_bias 1.0).
type edf struct {
	mu       sync.Mutex
	hosts    []*Host
	weight   []float64
	heap     []edfEntry // a min-heap by (deadline, seq)
	clock    float64    // Envoy's current_time_: the last deadline picked
	seq      uint64     // Envoy's order_offset_
	byActive bool
}

type edfEntry struct {
	deadline float64
	seq      uint64
	host     int
}

func newEDF(hosts []*Host, weights []uint32, byActive bool) *edf {
	b := &edf{hosts: hosts, weight: make([]float64, len(hosts)), heap: make([]edfEntry, len(hosts)), byActive: byActive}
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

func (b *edf) Pick(now time.Time, c LBContext) *Host {
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

func (b *edf) pickAndAdd() *Host {
	e := &b.heap[0]
	b.clock = e.deadline
	e.deadline = b.clock + 1/b.effective(e.host)
	e.seq = b.seq
	b.seq++
	i := e.host
	b.down(0)
	return b.hosts[i]
}

func (b *edf) effective(i int) float64 {
	if b.byActive {
		return b.weight[i] / float64(max(b.hosts[i].Active(), 0)+1)
	}
	return b.weight[i]
}

func (b *edf) less(i, j int) bool {
	x, y := &b.heap[i], &b.heap[j]
	return x.deadline < y.deadline || x.deadline == y.deadline && x.seq < y.seq
}

func (b *edf) down(i int) {
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
