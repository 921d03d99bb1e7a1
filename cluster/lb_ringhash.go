package cluster

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Envoy's ring_hash_lb_config defaults and limit.
const (
	DefaultMinRingSize = 1024
	DefaultMaxRingSize = 8388608
	MaxRingSize        = 8388608
)

// ringHash is RING_HASH, the ring built exactly as Envoy's ring_hash_lb.cc
// builds it (hash_function XX_HASH): see buildRing.
type ringHash struct {
	hashes []uint64 // the ring, sorted
	owner  []uint32 // owner[i] indexes hosts: the host at hashes[i]
	hosts  []*Host
}

func newRingHash(hosts []*Host, weights []uint32, keys []string, minSize, maxSize uint64) Balancer {
	norm, minW, _ := normalizeWeights(weights)
	r := &ringHash{hosts: hosts}
	r.hashes, r.owner = buildRing(keys, norm, minW, minSize, maxSize)
	return r
}

// normalizeWeights is Envoy's normalizeHostWeights (no locality weighting):
// each weight over their sum, and the smallest and largest of those.
func normalizeWeights(weights []uint32) (norm []float64, minW, maxW float64) {
	var sum uint64
	for _, w := range weights {
		sum += weightOf(w)
	}
	norm = make([]float64, len(weights))
	minW, maxW = 1.0, 0.0
	for i, w := range weights {
		norm[i] = float64(weightOf(w)) * 1.0 / float64(sum)
		minW, maxW = min(minW, norm[i]), max(maxW, norm[i])
	}
	return norm, minW, maxW
}

// buildRing is Envoy's RingHashLoadBalancer::Ring::Ring. The number of
// hashes is scaled so that the least-weighted host gets a whole number of
// them, at least minSize in all, at most maxSize. Walking the hosts in
// order with running sums of hashes made and hashes wanted, host i gets
// hashes until the sum made reaches the sum wanted; the hash of its j-th is
// xxHash64("<key>_<j>"). The ring is then sorted by hash.
func buildRing(keys []string, norm []float64, minW float64, minSize, maxSize uint64) ([]uint64, []uint32) {
	if len(keys) == 0 {
		return nil, nil
	}
	scale := math.Min(math.Ceil(minW*float64(minSize))/minW, float64(maxSize))
	size := uint64(math.Ceil(scale))
	type entry struct {
		hash uint64
		host uint32
	}
	ring := make([]entry, 0, size)
	var buf []byte
	current, target := 0.0, 0.0
	for i, key := range keys {
		buf = append(append(buf[:0], key...), '_')
		base := len(buf)
		target += scale * norm[i]
		for j := uint64(0); current < target; j++ {
			buf = strconv.AppendUint(buf[:base], j, 10)
			ring = append(ring, entry{xxhash.Sum64(buf), uint32(i)})
			current++
		}
	}
	slices.SortFunc(ring, func(a, b entry) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return 0
	})
	hashes, owner := make([]uint64, len(ring)), make([]uint32, len(ring))
	for i, e := range ring {
		hashes[i], owner[i] = e.hash, e.host
	}
	return hashes, owner
}

// lookup is Envoy's Ring::chooseHost search (ported from ketama): the first
// entry whose hash is >= h, wrapping to the first entry past the last.
func (r *ringHash) lookup(h uint64) int {
	lowp, highp := int64(0), int64(len(r.hashes))
	for {
		midp := (lowp + highp) / 2
		if midp == int64(len(r.hashes)) {
			return 0
		}
		midval := r.hashes[midp]
		var midval1 uint64
		if midp > 0 {
			midval1 = r.hashes[midp-1]
		}
		if h <= midval && h > midval1 {
			return int(midp)
		}
		if midval < h {
			lowp = midp + 1
		} else {
			highp = midp - 1
		}
		if lowp > highp {
			return 0
		}
	}
}

// pick looks the request's hash up (a random one when it has none, as
// Envoy). If that host is unhealthy or Exclude, it walks forward along the
// ring to the next distinct host, looking at no more hosts than there are:
// Envoy, which builds its ring of the healthy hosts only, gives an
// unhealthy host's keys to the next host on the ring the same way, and its
// retry host predicate also moves one ring entry at a time. If the walk
// finds no usable host, the host list is scanned from the hash; in panic
// mode the hashed host itself is used (Envoy then hashes over every host),
// or the next one that is not Exclude.
func (r *ringHash) Pick(now time.Time, c LBContext) *Host {
	h := c.Hash
	if !c.HasHash {
		h = rand.Uint64()
	}
	var cand, prev *Host
	if n := len(r.hashes); n > 0 {
		i := r.lookup(h)
		for k, seen := 0, 0; k < n && seen < len(r.hosts); k++ {
			host := r.hosts[r.owner[(i+k)%n]]
			if host == prev {
				continue
			}
			prev = host
			seen++
			if c.usable(host, now) {
				return host
			}
			if cand == nil && host != c.Exclude {
				cand = host
			}
		}
	}
	if host := scanUsable(r.hosts, h, now, c); host != nil {
		return host
	}
	if cand != nil {
		return cand
	}
	return notExcluded(r.hosts, h, c.Exclude)
}
