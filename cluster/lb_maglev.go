package cluster

import (
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Envoy's maglev_lb_config.table_size default and limit.
const (
	DefaultMaglevTableSize = 65537
	MaxMaglevTableSize     = 5000011
)

// maglev is MAGLEV, the lookup table built exactly as Envoy's maglev_lb.cc
// builds it: see buildMaglev.
type maglev struct {
	table []uint32 // table[i] indexes hosts
	hosts []*Host
}

func newMaglev(hosts []*Host, weights []uint32, keys []string, size uint64) Balancer {
	norm, _, maxW := normalizeWeights(weights)
	return &maglev{table: buildMaglev(keys, norm, maxW, size), hosts: hosts}
}

// buildMaglev is Envoy's MaglevTable::constructMaglevTableInternal and
// OriginalMaglevTable::constructImplementationInternals (pseudocode listing
// 1 of the Maglev paper, with weights). The hosts are taken in the order of
// their keys; host i's permutation of the table is offset + skip*j with
// offset = xxHash64(key, seed 0) % size and skip = xxHash64(key, seed 1) %
// (size-1) + 1. Round after round, each host whose turn has come (a host of
// the largest weight every round, one of a third of it every third round)
// takes the next free entry of its permutation, until the table is full.
// size must be prime.
func buildMaglev(keys []string, norm []float64, maxW float64, size uint64) []uint32 {
	if len(keys) == 0 {
		return nil
	}
	type buildEntry struct {
		host               uint32
		offset, skip, next uint64
		weight, target     float64
	}
	entries := make([]buildEntry, len(keys))
	for i, key := range keys {
		d := xxhash.NewWithSeed(1)
		d.WriteString(key)
		entries[i] = buildEntry{host: uint32(i), offset: xxhash.Sum64String(key) % size, skip: d.Sum64()%(size-1) + 1, weight: norm[i]}
	}
	slices.SortStableFunc(entries, func(a, b buildEntry) int { return strings.Compare(keys[a.host], keys[b.host]) })
	const free = ^uint32(0)
	table := make([]uint32, size)
	for i := range table {
		table[i] = free
	}
	filled := uint64(0)
	for iteration := uint32(1); filled < size; iteration++ {
		for i := 0; i < len(entries) && filled < size; i++ {
			e := &entries[i]
			if float64(iteration)*e.weight < e.target {
				continue
			}
			e.target += maxW
			c := (e.offset + e.skip*e.next) % size
			for table[c] != free {
				e.next++
				c = (e.offset + e.skip*e.next) % size
			}
			table[c] = e.host
			e.next++
			filled++
		}
	}
	return table
}

// pick returns table[hash % size] (for a random hash when the request has
// none, as Envoy). If that host is unhealthy or Exclude, it falls back as
// Envoy's retry host predicate does: attempt k looks up
// hash ^ (^0 - k + 1) (OriginalMaglevTable::chooseHost), for attempts 1 to
// n-1 with n hosts. If no attempt finds a usable host, the host list is
// scanned from the hash; in panic mode the hashed host itself is used (Envoy
// then builds its table of every host), or the first attempt's host that is
// not Exclude.
func (m *maglev) Pick(now time.Time, c LBContext) *Host {
	h := c.Hash
	if !c.HasHash {
		h = rand.Uint64()
	}
	var cand *Host
	for attempt := range uint64(len(m.hosts)) {
		host := m.hosts[m.table[m.slot(h, attempt)]]
		if c.usable(host, now) {
			return host
		}
		if cand == nil && host != c.Exclude {
			cand = host
		}
	}
	if host := scanUsable(m.hosts, h, now, c); host != nil {
		return host
	}
	if cand != nil {
		return cand
	}
	return notExcluded(m.hosts, h, c.Exclude)
}

// slot is the table entry of Envoy's chooseHost(hash, attempt).
func (m *maglev) slot(h, attempt uint64) uint64 {
	if attempt > 0 {
		h ^= ^uint64(0) - attempt + 1
	}
	return h % uint64(len(m.table))
}
