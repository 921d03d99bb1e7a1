//go:build cgo

package main

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Why an Envoy worker yields: a callback from C runs Go on the worker's own
// thread, which takes a P for the call and keeps it across calls (between
// them the runtime counts the thread as in a system call). Such a P never
// goes through the scheduler, so its scheduling tick never moves, and the
// runtime's monitor (sysmon) takes a P whose tick has not moved for 10 ms
// for a goroutine that will not yield: it preempts the callback with a
// signal, and because it found work to do it drops back to polling every
// 20 µs. Under load that was 12-15 % of the .so's CPU (nanosleep 0.19-0.33
// per call; bench/README.md). A runtime.Gosched now and then moves the
// tick: the monitor then sees a P that schedules, preempts nothing and
// backs off. A yield is not cheap: the callback's goroutine is locked to
// the worker's thread, so the P goes to another thread and comes back,
// about six futex calls and four context switches (perf, ABI host). At
// 5 ms that was 7 % of the .so's CPU; 8 ms makes it 40 % fewer yields and
// still moves the tick at least once in every 10 ms the monitor watches,
// with 2 ms to spare for a long callback.
const yieldEvery = 8 * time.Millisecond

// yieldSlot is one worker's last yield. Slots are found by thread id with
// linear probing; a worker past the table's size never yields, which only
// costs it the monitor's attention.
type yieldSlot struct {
	tid  atomic.Int32
	last atomic.Int64 // nanoseconds since yieldEpoch
}

var (
	yieldSlots [64]yieldSlot
	yieldEpoch = time.Now().Add(-yieldEvery) // a worker's first call yields
)

// keepTick yields if the worker tid (the calling thread, conn.worker) has
// not for yieldEvery. A worker only ever calls it from its own thread, so
// a slot's last is written by one thread.
func keepTick(tid int32) {
	if tid == 0 {
		return
	}
	s := yieldSlotOf(tid)
	if s == nil {
		return
	}
	if now := int64(time.Since(yieldEpoch)); now-s.last.Load() >= int64(yieldEvery) {
		s.last.Store(now)
		runtime.Gosched()
	}
}

// yieldSlotOf returns tid's slot, claiming a free one on first use; nil if
// the table is full.
func yieldSlotOf(tid int32) *yieldSlot {
	for i := range len(yieldSlots) {
		s := &yieldSlots[(int(tid)+i)%len(yieldSlots)]
		if t := s.tid.Load(); t == tid || t == 0 && (s.tid.CompareAndSwap(0, tid) || s.tid.Load() == tid) {
			return s
		}
	}
	return nil
}
