package cluster

import (
	"math/rand/v2"
	"time"
)

// random is RANDOM: a uniformly random host. Envoy's random balancer
// ignores weights too.
type random struct{ hosts []*Host }

func newRandom(hosts []*Host) Balancer { return &random{hosts: hosts} }

func (b *random) Pick(now time.Time, c LBContext) *Host { return pickRandom(b.hosts, now, c) }

// pickRandom draws a few times; if no draw is usable, it scans on from the
// last draw (so a usable host is found when there is one), then falls back
// to panic mode.
func pickRandom(hosts []*Host, now time.Time, c LBContext) *Host {
	n := uint64(len(hosts))
	var r uint64
	for range 3 {
		r = rand.Uint64N(n)
		if h := hosts[r]; c.usable(h, now) {
			return h
		}
	}
	if h := scanUsable(hosts, r, now, c); h != nil {
		return h
	}
	return notExcluded(hosts, r, c.Exclude)
}
