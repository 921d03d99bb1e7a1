package filter

import (
	"io"

	"github.com/metaproxy/metaproxy/codec"
)

// Named is a configured filter.
type Named struct {
	Name   string
	Filter Filter
}

// Chain is a configured filter chain, shared by every connection of one
// configuration. It runs the filters of an exchange, remembers where a
// paused exchange stopped, and contains a filter's panic as the failure of
// that exchange alone.
type Chain struct {
	names   []string
	req     []Filter
	resp    []ResponseFilter // in reverse order
	respN   []string
	done    []Completer
	doneN   []string
	onPanic func(filter string, p any)
}

// NewChain builds a chain. onPanic (may be nil) is told of every panic a
// filter raised; the chain has already turned it into the exchange's
// internal error.
func NewChain(fs []Named, onPanic func(filter string, p any)) *Chain {
	c := &Chain{onPanic: onPanic}
	for _, f := range fs {
		c.names = append(c.names, f.Name)
		c.req = append(c.req, f.Filter)
	}
	for i := len(fs) - 1; i >= 0; i-- {
		if rf, ok := fs[i].Filter.(ResponseFilter); ok {
			c.resp, c.respN = append(c.resp, rf), append(c.respN, fs[i].Name)
		}
	}
	for _, f := range fs {
		if cf, ok := f.Filter.(Completer); ok {
			c.done, c.doneN = append(c.done, cf), append(c.doneN, f.Name)
		}
	}
	return c
}

// Len returns the number of request filters.
func (c *Chain) Len() int { return len(c.req) }

// States of Exchange.state: they tell a Resume that comes while the
// filter's OnRequest is still running (inline, or from another goroutine
// before Pause was returned) from one that resumes a paused exchange.
const (
	stateIdle int32 = iota
	stateRunning
	stateResumedEarly
	statePaused
)

// Start prepares x to run the chain from its first filter; Resume will
// call r.
func (c *Chain) Start(x *Exchange, r Resumer) {
	x.resumer, x.next = r, 0
	x.state.Store(stateIdle)
}

// Run runs the request filters from where x stopped. It returns Continue
// when every filter let x through (the router goes next), Stop when x is to
// be answered with x.LocalReply (which Run sets if the filter did not), and
// Pause when a filter paused x: its Resume will call the Resumer given to
// Start, which calls Run again (a filter that called Reply before Resume
// makes that Run return Stop at once). A Resume that comes before the filter
// returned Pause (even from inside OnRequest) makes Run go on at once.
func (c *Chain) Run(x *Exchange) Status {
	if x.LocalReply != nil { // a filter replied, then resumed: rejected
		return Stop
	}
	for x.next < len(c.req) {
		i := x.next
		x.next++
		x.state.Store(stateRunning)
		st := c.call(i, x)
		if st == Pause && x.state.CompareAndSwap(stateRunning, statePaused) {
			return Pause
		}
		x.state.Store(stateIdle)
		if st == Stop || x.LocalReply != nil {
			if x.LocalReply == nil {
				x.LocalReply = codec.Errorf(codec.ErrInternal, "metaproxy: request stopped by filter %q", c.names[i])
			}
			return Stop
		}
	}
	return Continue
}

// Paused reports whether x waits for a filter's Resume.
func (x *Exchange) Paused() bool { return x.state.Load() == statePaused }

// Resume continues a paused exchange with the next filter. Call it exactly
// once per Pause, from any goroutine (inside OnRequest too). To reject
// instead, call Reply first and then Resume. A Resume of an exchange that
// is not paused is ignored.
func (x *Exchange) Resume() {
	if x.state.CompareAndSwap(stateRunning, stateResumedEarly) {
		if o, ok := x.resumer.(ResumeObserver); ok {
			o.ResumedEarly(x)
		}
		return
	}
	if x.state.CompareAndSwap(statePaused, stateIdle) {
		x.resumer.Resume(x)
		return
	}
	if o, ok := x.resumer.(ResumeObserver); ok {
		o.ResumedStray(x)
	}
}

// ResumeObserver is an optional interface of a Resumer that wants to know
// of Resumes that do not resume a paused exchange: ResumedEarly for one
// that came while the filter's OnRequest still ran (from inside it, or from
// a goroutine that was quick), ResumedStray for one of an exchange that is
// not paused (a second Resume, or a Resume without a Pause: a filter's
// bug). Package filtertest uses it to fail such filters.
type ResumeObserver interface {
	ResumedEarly(x *Exchange)
	ResumedStray(x *Exchange)
}

func (c *Chain) call(i int, x *Exchange) (st Status) {
	defer func() {
		if p := recover(); p != nil {
			c.panicked(c.names[i], p)
			st = x.Reply(codec.ErrInternal, "metaproxy: filter %q failed", c.names[i])
		}
	}()
	return c.req[i].OnRequest(x)
}

// Respond runs the response filters on x, last configured first.
func (c *Chain) Respond(x *Exchange) {
	for i := range c.resp {
		c.respond(i, x)
	}
}

func (c *Chain) respond(i int, x *Exchange) {
	defer c.contain(c.respN[i])
	c.resp[i].OnResponse(x)
}

// Completes reports whether any filter has a completion hook: the proxy
// fills in the outcome only for them.
func (c *Chain) Completes() bool { return len(c.done) > 0 }

// Complete runs the completion hooks on x, which has ended.
func (c *Chain) Complete(x *Exchange) {
	for i := range c.done {
		c.complete(i, x)
	}
}

func (c *Chain) complete(i int, x *Exchange) {
	defer c.contain(c.doneN[i])
	c.done[i].OnComplete(x)
}

func (c *Chain) contain(name string) {
	if p := recover(); p != nil {
		c.panicked(name, p)
	}
}

func (c *Chain) panicked(name string, p any) {
	if c.onPanic != nil {
		c.onPanic(name, p)
	}
}

// Close closes the filters that hold resources (io.Closer), when the
// configuration is retired.
func (c *Chain) Close() {
	for _, f := range c.req {
		if cl, ok := f.(io.Closer); ok {
			_ = cl.Close()
		}
	}
}
