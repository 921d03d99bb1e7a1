package proxy

import (
	"errors"

	"github.com/metaproxy/metaproxy/codec"
)

// Waiting for a connection. An exclusive pool (one request per connection)
// whose cluster is at its max_connections cannot dial: a client's request
// then waits in the pool, holding one of the cluster's
// max_pending_requests, for the next connection the pool frees (given
// back after an answer) or can dial again (after one of its connections
// closes), as in Envoy's HTTP/1 pools. Over max_pending_requests, or for
// a request nobody would wait for (a oneway call, a mirrored copy), the
// request fails at once with the overloaded error. A waiting request
// still times out at its deadline and is cancelled if its client leaves.
//
// Ownership: while ex waits, the pool holds it; whoever takes it out of
// p.waiters under p.mu (a freed connection, the sweeper, a closing pool or
// its session cancelling it) owns it. Only the session writes ex.try.

// errAtCapacity: the cluster is at max_connections.
var errAtCapacity = errors.New("at max_connections")

// atCapacity is the error of a request that cannot get a connection.
func (p *pool) atCapacity() *codec.Error {
	return codec.Errorf(codec.ErrOverloaded, "metaproxy: cluster %q is at its max_connections (%d)", p.cl.Name(), p.cl.Thresholds().MaxConnections)
}

// wait queues ex until p has a connection for it; the caller holds ex's
// session lock. On error ex is still the caller's.
func (p *pool) wait(ex *exchange) error {
	if _, ok := ex.owner.(*Session); !ok || !twoWay(ex.req.Kind) {
		return p.atCapacity()
	}
	if !p.cl.TryPending() {
		return codec.Errorf(codec.ErrOverloaded, "metaproxy: cluster %q is at its max_connections (%d) and max_pending_requests (%d)",
			p.cl.Name(), p.cl.Thresholds().MaxConnections, p.cl.Thresholds().MaxPendingRequests)
	}
	p.mu.Lock()
	if p.closed {
		err := p.closedErr()
		p.mu.Unlock()
		p.cl.EndPending()
		return err
	}
	ex.try.waiting = p
	p.waiters = append(p.waiters, ex)
	if len(p.waiters) == 1 {
		p.srv.trackWaiting(p, true)
	}
	p.mu.Unlock()
	return nil
}

// popWaiter takes the first waiting request out of p, or nil; p.mu is held.
func (p *pool) popWaiter() *exchange {
	if len(p.waiters) == 0 {
		return nil
	}
	ex := p.waiters[0]
	p.waiters[0] = nil
	p.waiters = p.waiters[1:]
	if len(p.waiters) == 0 {
		p.waiters = nil
		p.srv.trackWaiting(p, false)
	}
	p.cl.EndPending()
	return ex
}

// takeWaiters takes every waiting request out of p; p.mu is held.
func (p *pool) takeWaiters() []*exchange {
	exs := p.waiters
	p.waiters = nil
	if len(exs) > 0 {
		p.srv.trackWaiting(p, false)
		p.cl.EndPendingN(len(exs))
	}
	return exs
}

// cancelWait takes ex out of p if it still waits there.
func (p *pool) cancelWait(ex *exchange) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, w := range p.waiters {
		if w == ex {
			p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
			if len(p.waiters) == 0 {
				p.waiters = nil
				p.srv.trackWaiting(p, false)
			}
			p.cl.EndPending()
			return true
		}
	}
	return false
}

// redial dials for the first waiting request after one of p's connections
// closed (its place under max_connections is free again). If the pool
// still cannot dial, the requests keep waiting.
func (p *pool) redial() {
	p.mu.Lock()
	if len(p.waiters) == 0 || p.closed {
		p.mu.Unlock()
		return
	}
	u, err := p.dial()
	if err != nil {
		p.mu.Unlock()
		return
	}
	ex := p.popWaiter()
	p.mu.Unlock()
	ex.owner.(*Session).wake(ex, u)
}

// expireWaiters fails the waiting requests whose deadline passed at now.
func (p *pool) expireWaiters(now int64) {
	p.mu.Lock()
	var perTry, whole []*exchange
	keep := p.waiters[:0]
	for _, ex := range p.waiters {
		switch d := ex.try.deadline; {
		case d == 0 || d > now:
			keep = append(keep, ex)
		case ex.deadline == 0 || d < ex.deadline:
			perTry = append(perTry, ex)
		default:
			whole = append(whole, ex)
		}
	}
	clear(p.waiters[len(keep):])
	p.waiters = keep
	if n := len(perTry) + len(whole); n > 0 {
		p.cl.EndPendingN(n)
		if len(keep) == 0 {
			p.waiters = nil
			p.srv.trackWaiting(p, false)
		}
	}
	p.mu.Unlock()
	if len(perTry) > 0 {
		p.srv.stats.UpstreamRqPerTryTimeout.Add(uint64(len(perTry)))
		p.cl.Stats().UpstreamRqPerTryTimeout.Add(uint64(len(perTry)))
		failWaiters(perTry, &failure{causePerTryTimeout, codec.Errorf(codec.ErrTimeout, "metaproxy: no connection to %s within the per-try timeout", p.addr)})
	}
	if len(whole) > 0 {
		p.srv.stats.RequestTimeout.Add(uint64(len(whole)))
		p.cl.Stats().UpstreamRqTimeout.Add(uint64(len(whole)))
		failWaiters(whole, &failure{causeTimeout, codec.Errorf(codec.ErrTimeout, "metaproxy: no connection to %s in time", p.addr)})
	}
}

// failWaiters hands requests taken out of a pool back to their sessions
// with f. They were never sent: no host counts them.
func failWaiters(exs []*exchange, f *failure) {
	for _, ex := range exs {
		ss := ex.owner.(*Session)
		ss.mu.Lock()
		ex.try.waiting = nil
		ss.mu.Unlock()
		if ss.result(ex, f) {
			ss.flush()
		}
	}
}

// wake sends ex, which waited in a pool, on u: a connection the pool freed
// or dialled for it. It runs with no session's lock held.
func (ss *Session) wake(ex *exchange, u *upstream) {
	ss.mu.Lock()
	ex.try.waiting = nil
	if ss.closed {
		ss.srv.stats.RequestCancelled.Add(1)
		ss.finish(ex)
		ss.unlock()
		u.pool.giveBack(u)
		return
	}
	mustFlush, err := u.send(ex)
	if err != nil {
		f := failure{cause: causeLocal, err: asCodecError(err)}
		if err == errUpstreamClosed {
			f = failure{causeConnect, codec.Errorf(codec.ErrUnavailable, "metaproxy: upstream %s closed", u.pool.addr)}
		}
		ex.endTry()
		if !ss.retry(ex, &f) {
			ss.localReply(ex, f.err)
		}
		ss.unlock()
		if err != errUpstreamClosed {
			u.pool.giveBack(u)
		}
		return
	}
	if mustFlush {
		ss.dirty = append(ss.dirty, u)
	}
	ss.unlock()
}

// trackWaiting adds p to (or removes it from) the pools the sweeper checks
// for waiting requests past their deadline; p.mu is held.
func (s *Server) trackWaiting(p *pool, waiting bool) {
	s.upMu.Lock()
	if waiting {
		s.waiting[p] = struct{}{}
	} else {
		delete(s.waiting, p)
	}
	s.upMu.Unlock()
}
