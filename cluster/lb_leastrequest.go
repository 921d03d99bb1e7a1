package cluster

import (
	"math/rand/v2"
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
	return newEDF(hosts, weights, true)
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
