//go:build cgo

package main

import (
	"testing"
	"time"
)

// TestKeepTick: each worker gets its own slot (thread ids that collide in
// the table too), yields at most once per yieldEvery, and a worker past
// the table's size is left alone.
func TestKeepTick(t *testing.T) {
	defer func() { yieldSlots = [len(yieldSlots)]yieldSlot{} }()
	a, b := int32(1000), int32(1000+len(yieldSlots)) // same home slot
	keepTick(a)
	keepTick(b)
	sa, sb := yieldSlotOf(a), yieldSlotOf(b)
	if sa == nil || sb == nil || sa == sb {
		t.Fatalf("slots of two workers: %p and %p, want two", sa, sb)
	}
	first := sa.last.Load()
	if first == 0 {
		t.Fatal("a worker's first callback did not yield")
	}
	keepTick(a)
	if sa.last.Load() != first {
		t.Fatal("a worker yielded twice within yieldEvery")
	}
	sa.last.Store(int64(time.Since(yieldEpoch) - yieldEvery))
	keepTick(a)
	if sa.last.Load() == first {
		t.Fatal("a worker did not yield after yieldEvery")
	}
	for tid := range int32(len(yieldSlots)) {
		yieldSlotOf(tid + 1)
	}
	if s := yieldSlotOf(5000); s != nil {
		t.Fatal("a slot for a worker past the table's size")
	}
	keepTick(5000) // must not loop or panic
	keepTick(0)
}
