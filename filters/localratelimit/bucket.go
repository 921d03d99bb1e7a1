package localratelimit

import (
	"sync/atomic"
	"time"
)

// bucket is a token bucket refilled lazily: no timer, no goroutine. Its
// state is one word — the number of the last fill (fill intervals since
// the bucket was made) and the tokens left — changed by compare-and-swap,
// so every connection of the listener takes from it without a lock. It
// starts full, as Envoy's.
type bucket struct {
	max, perFill uint64
	interval     time.Duration
	origin       time.Time
	state        atomic.Uint64 // fill number << 32 | tokens
}

func newBucket(max, perFill uint32, interval time.Duration, now time.Time) *bucket {
	b := &bucket{max: uint64(max), perFill: uint64(perFill), interval: interval, origin: now}
	b.state.Store(uint64(max))
	return b
}

// take takes a token at now and reports whether there was one.
func (b *bucket) take(now time.Time) bool {
	fill := uint64(max(now.Sub(b.origin), 0) / b.interval)
	for {
		old := b.state.Load()
		last, tokens := old>>32, old&0xffffffff
		if fill > last {
			tokens = min(b.max, tokens+(fill-last)*b.perFill)
			last = fill
		}
		if tokens == 0 {
			if old == last<<32 || b.state.CompareAndSwap(old, last<<32) {
				return false
			}
			continue
		}
		if b.state.CompareAndSwap(old, last<<32|(tokens-1)) {
			return true
		}
	}
}
