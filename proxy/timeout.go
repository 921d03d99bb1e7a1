package proxy

import (
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// Request timeouts are enforced by one sweeper per Server instead of a timer
// per request: a request costs nothing more than its send time, and the
// sweeper looks at every pending request a few times per timeout.

func (s *Server) trackUpstream(u *upstream, live bool) {
	s.upMu.Lock()
	if live {
		s.ups[u] = struct{}{}
	} else {
		delete(s.ups, u)
	}
	s.upMu.Unlock()
}

func (s *Server) sweep() {
	every := min(max(s.cfg.RequestTimeout/4, time.Millisecond), 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var ups []*upstream
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.upMu.Lock()
		ups = ups[:0]
		for u := range s.ups {
			ups = append(ups, u)
		}
		s.upMu.Unlock()
		deadline := s.now().Add(-s.cfg.RequestTimeout).UnixNano()
		for _, u := range ups {
			u.expire(deadline)
		}
		clear(ups)
	}
}

// expire answers with a timeout error every request sent before deadline.
// On an exclusive connection the late response would be taken for the
// answer to the next request, so the connection is closed instead.
func (u *upstream) expire(deadline int64) {
	s := u.srv
	u.mu.Lock()
	if u.state == upClosed {
		u.mu.Unlock()
		return
	}
	var expired []*exchange
	for id, ex := range u.pending {
		if ex.sentAt < deadline {
			expired = append(expired, ex)
			delete(u.pending, id)
		}
	}
	u.mu.Unlock()
	if len(expired) == 0 {
		return
	}
	s.stats.RequestTimeout.Add(uint64(len(expired)))
	e := codec.Errorf(codec.ErrTimeout, "metaproxy: no response from %s within %v", u.pool.addr, s.cfg.RequestTimeout)
	deliverAll(expired, e, nil)
	if !u.pool.mux {
		u.close()
	}
}
