// Package filtertest drives a filter in-process, as the proxy's chain
// does, with a fake clock, a seeded random source and its own stats: every
// built-in filter's unit tests use it (see filters/localratelimit for an
// example to copy).
//
//	h := filtertest.New(t)
//	f, err := myfilter.New(config, h.Env)
//	c := h.Run(f, "method", "sayHello")     // the request, as metadata pairs
//	c.Status                                 // Continue, Stop or Pause
//	h.Clock.Advance(time.Second)             // fires the filter's timers
//	c.WaitResumed()                          // a paused request went on
//	c.Reply()                                // the local reply, if any
//
// The kit fails the test when a filter calls Resume from inside its own
// OnRequest (it should have returned Continue), resumes an exchange twice
// or without pausing it, or never resumes one it paused (checked by
// WaitResumed and at the end of the test for every paused call).
package filtertest

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// Harness runs filters in a test.
type Harness struct {
	t testing.TB
	// Env is the environment to build filters with: Clock, a seeded Rand,
	// Stats, a logger that writes to the test log.
	Env   filter.Env
	Clock *Clock
	Stats *filter.Stats

	mu    sync.Mutex
	calls []*Call
}

// New returns a harness whose clock starts at 2026-01-01 00:00 UTC.
func New(t testing.TB) *Harness {
	h := &Harness{t: t, Clock: NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), Stats: filter.NewStats()}
	h.Env = filter.Env{StatPrefix: "test", Clock: h.Clock, Rand: NewRand(1), Stats: h.Stats}.WithDefaults()
	t.Cleanup(h.checkResumed)
	return h
}

// Request returns a two-way request carrying the metadata pairs kv
// (key, value, key, value...).
func Request(kv ...string) *codec.Message {
	m := &codec.Message{Kind: codec.KindRequest, ID: 1}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Meta.Set(kv[i], kv[i+1])
	}
	return m
}

// Run runs f alone on a request with metadata kv; see Send.
func (h *Harness) Run(f filter.Filter, kv ...string) *Call {
	return h.Send(filter.NewChain([]filter.Named{{Name: "under-test", Filter: f}}, h.panicked), Request(kv...), "10.1.2.3:4567")
}

// Send runs chain on req from the client at downstream, as the proxy
// would: its request filters, and on a Stop their response filters on the
// local reply.
func (h *Harness) Send(chain *filter.Chain, req *codec.Message, downstream string) *Call {
	c := &Call{h: h, chain: chain, resumed: make(chan struct{})}
	c.X.Request, c.X.Downstream, c.X.Start = req, downstream, h.Clock.Now()
	h.mu.Lock()
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	chain.Start(&c.X, c)
	c.run()
	return c
}

func (h *Harness) panicked(name string, p any) { h.t.Logf("filter %s panicked: %v", name, p) }

// checkResumed fails the test for every call left paused.
func (h *Harness) checkResumed() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.calls {
		if c.X.Paused() {
			h.t.Errorf("filtertest: call %d is still paused at the end of the test: the filter never resumed it", i)
		}
	}
}

// Call is one request through the chain.
type Call struct {
	h     *Harness
	chain *filter.Chain
	// X is the exchange.
	X filter.Exchange
	// Status is what the chain returned first: Pause when a filter paused.
	Status filter.Status

	mu      sync.Mutex
	started bool
	final   filter.Status // after the last resume
	done    bool
	running int64 // the goroutine running the chain, while it does
	resumed chan struct{}
}

// run runs the chain from where it stopped.
func (c *Call) run() {
	c.mu.Lock()
	c.running = goid()
	c.mu.Unlock()
	st := c.chain.Run(&c.X)
	c.mu.Lock()
	c.running = 0
	if !c.started {
		c.started, c.Status = true, st
	}
	if st != filter.Pause {
		c.final, c.done = st, true
	}
	c.mu.Unlock()
	if st == filter.Stop {
		c.chain.Respond(&c.X)
	}
	if st != filter.Pause {
		close(c.resumed)
	}
}

// Resume implements filter.Resumer: the chain goes on, as the proxy's
// would, in the resuming goroutine.
func (c *Call) Resume(*filter.Exchange) { c.run() }

// ResumedEarly implements filter.ResumeObserver.
func (c *Call) ResumedEarly(*filter.Exchange) {
	c.mu.Lock()
	inline := c.running == goid()
	c.mu.Unlock()
	if inline {
		c.h.t.Errorf("filtertest: the filter called Resume from inside its OnRequest: return Continue instead")
	}
}

// ResumedStray implements filter.ResumeObserver.
func (c *Call) ResumedStray(*filter.Exchange) {
	c.h.t.Errorf("filtertest: Resume of an exchange that is not paused (a second Resume, or one without Pause)")
}

// Done reports whether the chain has finished with the call (it was not
// paused, or was resumed and ran to its end).
func (c *Call) Done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// Final returns the chain's last result: Continue (the router would run)
// or Stop (answered with Reply); Pause while still paused.
func (c *Call) Final() filter.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		return filter.Pause
	}
	return c.final
}

// WaitResumed waits (10 s at most, in real time) for a paused call to be
// resumed and run to its end; it fails the test if it is not.
func (c *Call) WaitResumed() {
	c.h.t.Helper()
	if c.Done() {
		return
	}
	select {
	case <-c.resumed:
	case <-time.After(10 * time.Second):
		c.h.t.Fatalf("filtertest: the paused call was not resumed within 10 s")
	}
}

// Reply returns the local reply the call got, or nil.
func (c *Call) Reply() *codec.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.X.LocalReply
}

// Allowed reports whether the call went through every filter (to the
// router), paused or not.
func (c *Call) Allowed() bool { return c.Final() == filter.Continue }

// Complete ends the call with outcome o and runs the completion hooks.
func (c *Call) Complete(o filter.Outcome) {
	c.X.Outcome = o
	c.chain.Complete(&c.X)
}

// goid returns the current goroutine's id (for the inline Resume check
// only: tests are not hot paths).
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseInt(string(b), 10, 64)
	return id
}

// Rand is a seeded random source, safe for concurrent use.
type Rand struct {
	mu sync.Mutex
	r  *rand.Rand
}

// NewRand returns a source seeded with seed.
func NewRand(seed uint64) *Rand { return &Rand{r: rand.New(rand.NewPCG(seed, seed))} }

// Uint64 implements filter.Rand.
func (r *Rand) Uint64() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Uint64()
}
