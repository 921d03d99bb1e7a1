package proxy

import (
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// Deadlines. A request's deadline runs from its decoding: the route's
// timeout, else the listener's request_timeout. An attempt's deadline is
// the request's, or its retry policy's per_try_timeout when that comes
// first. Attempts at upstreams are checked
// instead of a timer per request (a request costs nothing more than its
// deadline), a few times per shortest timeout, by one sweeper per process; an exchange a filter holds
// paused gets a timer of its own (pausing is rare, and the sweeper does not
// see it).

func (s *Server) trackUpstream(u *upstream, live bool) {
	s.upMu.Lock()
	if live {
		s.ups[u] = struct{}{}
	} else {
		delete(s.ups, u)
	}
	s.upMu.Unlock()
}

// sweeper is the process's one deadline checker, shared by every Server:
// a process with a thousand listener configurations (Envoy keeps every
// config it ever parsed) runs one goroutine, not a thousand. It runs while
// at least one Server is open.
var sweeper struct {
	mu      sync.Mutex
	servers map[*Server]struct{}
	stop    chan struct{}
}

// startSweeping adds s to the sweeper, starting it if s is the first.
func (s *Server) startSweeping() {
	sweeper.mu.Lock()
	defer sweeper.mu.Unlock()
	if sweeper.servers == nil {
		sweeper.servers = map[*Server]struct{}{}
	}
	sweeper.servers[s] = struct{}{}
	if sweeper.stop == nil {
		sweeper.stop = make(chan struct{})
		go sweep(sweeper.stop)
	}
}

// stopSweeping removes s, stopping the sweeper after the last Server.
func (s *Server) stopSweeping() {
	sweeper.mu.Lock()
	defer sweeper.mu.Unlock()
	delete(sweeper.servers, s)
	if len(sweeper.servers) == 0 && sweeper.stop != nil {
		close(sweeper.stop)
		sweeper.stop = nil
	}
}

// sweep checks the deadlines of every Server's upstream requests, as often
// as the shortest timeout among them asks.
func sweep(stop chan struct{}) {
	var servers []*Server
	var ups []*upstream
	tick := 100 * time.Millisecond
	t := time.NewTimer(tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		sweeper.mu.Lock()
		servers = servers[:0]
		for s := range sweeper.servers {
			servers = append(servers, s)
		}
		sweeper.mu.Unlock()
		tick = 100 * time.Millisecond
		for _, s := range servers {
			tick = min(tick, s.snap.Load().tick)
			ups = s.sweep(ups)
		}
		clear(servers)
		t.Reset(tick)
	}
}

// sweep expires the attempts of s past their deadline; ups is scratch.
func (s *Server) sweep(ups []*upstream) []*upstream {
	s.upMu.Lock()
	ups = ups[:0]
	for u := range s.ups {
		ups = append(ups, u)
	}
	var waiting []*pool
	for p := range s.waiting {
		waiting = append(waiting, p)
	}
	s.upMu.Unlock()
	now := s.now().UnixNano()
	for _, u := range ups {
		u.expire(now)
	}
	for _, p := range waiting {
		p.expireWaiters(now)
	}
	clear(ups)
	return ups[:0]
}

// expire ends every attempt whose deadline passed at now: a per-try
// timeout (which a retry policy may retry) or the request's timeout. On an
// exclusive connection the late response would be taken for the answer to
// the next request, so the connection is closed instead.
func (u *upstream) expire(now int64) {
	s := u.srv
	u.mu.Lock()
	if u.state == upClosed {
		u.mu.Unlock()
		return
	}
	var perTry, whole []*exchange
	for id, ex := range u.pending {
		if d := ex.try.deadline; d != 0 && d <= now {
			if ex.deadline == 0 || d < ex.deadline {
				perTry = append(perTry, ex)
			} else {
				whole = append(whole, ex)
			}
			delete(u.pending, id)
		}
	}
	u.mu.Unlock()
	if len(perTry)+len(whole) == 0 {
		return
	}
	if len(perTry) > 0 {
		s.stats.UpstreamRqPerTryTimeout.Add(uint64(len(perTry)))
		u.pool.cl.Stats().UpstreamRqPerTryTimeout.Add(uint64(len(perTry)))
		deliverAll(perTry, &failure{causePerTryTimeout,
			codec.Errorf(codec.ErrTimeout, "metaproxy: no response from %s within the per-try timeout", u.pool.addr)}, nil)
	}
	if len(whole) > 0 {
		s.stats.RequestTimeout.Add(uint64(len(whole)))
		u.pool.cl.Stats().UpstreamRqTimeout.Add(uint64(len(whole)))
		deliverAll(whole, &failure{causeTimeout,
			codec.Errorf(codec.ErrTimeout, "metaproxy: no response from %s in time", u.pool.addr)}, nil)
	}
	if !u.pool.mux {
		u.close()
	}
}

// timePause arms the deadline of ex, which a filter paused; ss.mu is held.
func (ss *Session) timePause(ex *exchange) {
	if ex.deadline == 0 {
		return
	}
	gen := ex.gen.Load()
	wait := time.Duration(ex.deadline - ss.srv.now().UnixNano())
	time.AfterFunc(max(wait, 0), func() { ss.pauseExpired(ex, gen) })
}

// pauseExpired answers ex with a timeout if a filter still holds it paused
// at its deadline. The filter may be using ex.x: only the request, which
// nobody writes, is read; ex is released when the filter resumes it.
func (ss *Session) pauseExpired(ex *exchange, gen uint32) {
	ss.mu.Lock()
	defer ss.unlock()
	if ex.gen.Load() != gen || !ex.paused || ex.expired || ss.closed {
		return
	}
	s := ss.srv
	ex.expired = true
	s.stats.RequestTimeout.Add(1)
	ss.active--
	s.stats.RequestActive.Add(-1)
	if twoWay(ex.req.Kind) && !ex.unawaited {
		s.stats.LocalResponseBusinessException.Add(1)
		ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &ex.req,
			codec.Errorf(codec.ErrTimeout, "metaproxy: request not processed in time (held by a filter)"))
	}
	ss.closeIfDone()
}
