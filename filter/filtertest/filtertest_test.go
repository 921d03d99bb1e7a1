package filtertest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// recTB records the kit's failures instead of failing.
type recTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recTB) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

// delay pauses each request for d on the harness clock.
type delay struct {
	clock filter.Clock
	d     time.Duration
}

func (f delay) OnRequest(x *filter.Exchange) filter.Status {
	f.clock.AfterFunc(f.d, x.Resume)
	return filter.Pause
}

func TestPauseAndResumeOnTheFakeClock(t *testing.T) {
	h := New(t)
	c := h.Run(delay{h.Clock, time.Second}, "method", "m")
	if c.Status != filter.Pause || c.Done() {
		t.Fatalf("status %v, done %v: want paused", c.Status, c.Done())
	}
	if n := h.Clock.Advance(999 * time.Millisecond); n != 0 {
		t.Fatalf("%d timers fired before their time", n)
	}
	h.Clock.Advance(time.Millisecond)
	c.WaitResumed()
	if !c.Allowed() || c.Reply() != nil {
		t.Fatalf("final %v, reply %v", c.Final(), c.Reply())
	}
}

func TestStopRunsResponseFiltersOnTheReply(t *testing.T) {
	h := New(t)
	c := h.Run(filter.Func(func(x *filter.Exchange) filter.Status { return x.Reply(codec.ErrOverloaded, "no") }))
	if c.Status != filter.Stop || c.Reply().Type != codec.ErrOverloaded {
		t.Fatalf("status %v, reply %v", c.Status, c.Reply())
	}
}

func TestInlineAndStrayResumesFail(t *testing.T) {
	r := &recTB{TB: t}
	h := New(r)
	h.Run(filter.Func(func(x *filter.Exchange) filter.Status { x.Resume(); return filter.Pause }))
	if !strings.Contains(r.failures(), "from inside its OnRequest") {
		t.Errorf("an inline Resume was not caught: %q", r.failures())
	}
	var saved *filter.Exchange
	c := h.Run(filter.Func(func(x *filter.Exchange) filter.Status { saved = x; return filter.Pause }))
	saved.Resume()
	c.WaitResumed()
	saved.Resume()
	if !strings.Contains(r.failures(), "not paused") {
		t.Errorf("a second Resume was not caught: %q", r.failures())
	}
}

func TestNeverResumedFailsAtTheEnd(t *testing.T) {
	r := &recTB{TB: t}
	t.Run("inner", func(t *testing.T) {
		r.TB = t
		h := New(r)
		h.Run(filter.Func(func(*filter.Exchange) filter.Status { return filter.Pause }))
	})
	if !strings.Contains(r.failures(), "never resumed") {
		t.Errorf("a call left paused was not caught: %q", r.failures())
	}
}

func TestSeededRandIsRepeatable(t *testing.T) {
	a, b := NewRand(7), NewRand(7)
	for range 10 {
		if a.Uint64() != b.Uint64() {
			t.Fatal("two sources with one seed differ")
		}
	}
	hits := 0
	for range 10000 {
		if filter.Chance(a, 25, 100) {
			hits++
		}
	}
	if hits < 2300 || hits > 2700 {
		t.Fatalf("Chance(25/100) hit %d of 10000", hits)
	}
}

// A filter that replies, then resumes, rejects the request: the filters
// after it do not run, and the call ends with Stop.
func TestReplyThenResumeStops(t *testing.T) {
	h := New(t)
	ran := false
	chain := filter.NewChain([]filter.Named{
		{Name: "rejecter", Filter: filter.Func(func(x *filter.Exchange) filter.Status {
			go func() { x.Reply(codec.ErrOverloaded, "later"); x.Resume() }()
			return filter.Pause
		})},
		{Name: "next", Filter: filter.Func(func(*filter.Exchange) filter.Status { ran = true; return filter.Continue })},
	}, nil)
	c := h.Send(chain, Request("method", "m"), "10.0.0.1:1")
	c.WaitResumed()
	if c.Final() != filter.Stop || ran || c.Reply().Type != codec.ErrOverloaded {
		t.Fatalf("final %v, next filter ran %v, reply %v", c.Final(), ran, c.Reply())
	}
}
