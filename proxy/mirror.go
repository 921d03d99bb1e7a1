package proxy

import (
	"math/rand/v2"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// Mirroring (Aeraki's request_mirror_policies): a share of a route's
// requests is copied to a mirror cluster, fire and forget. A copy is its
// own exchange owned by the listener's mirror sink, which discards the
// answer: it never delays, fails or reorders the primary, which is queued
// first and flushed first. Copies in flight are bounded per listener
// (maxMirrorsInFlight); a dead mirror costs a fast failure (its hosts back
// off), a slow one a request timeout, and both are counted.

const maxMirrorsInFlight = 1024

// mirror sends the copies of ex that r's policies ask for; ss.mu is held.
func (ss *Session) mirror(ex *exchange, r *router.Route) {
	s := ss.srv
	for i := range r.Mirrors {
		m := &r.Mirrors[i]
		if m.Millionths < 1e6 && rand.Uint32N(1e6) >= m.Millionths {
			continue
		}
		ref := ex.snap.clusters[m.Cluster]
		if ref == nil {
			s.stats.RequestMirrorFailed.Add(1)
			continue
		}
		if s.stats.RequestMirrorActive.Add(1) > maxMirrorsInFlight {
			s.stats.RequestMirrorActive.Add(-1)
			s.stats.RequestMirrorOverflow.Add(1)
			continue
		}
		s.stats.RequestMirror.Add(1)
		ex.x.Outcome.Mirrored++
		ss.sendCopy(ex, ref)
	}
}

// sendCopy sends a copy of ex's request to ref; ss.mu is held.
func (ss *Session) sendCopy(ex *exchange, ref *clusterRef) {
	s := ss.srv
	c := newExchange(&s.mirrors, ex.snap)
	c.reqBuf = append(c.reqBuf[:0], ex.reqBuf...)
	c.req.Kind, c.req.ID, c.req.Variant, c.req.Frame = ex.req.Kind, ex.req.ID, ex.req.Variant, c.reqBuf
	c.x.RequestHeaders = append(c.x.RequestHeaders[:0], ex.x.RequestHeaders...)
	c.x.Route, c.x.Cluster, c.cl, c.lb, c.deadline = ex.x.Route, ref.cl.Name(), ref, ex.lb, ex.deadline
	h := ref.cl.Pick(s.now(), &c.lb)
	if h == nil {
		s.mirrors.done(c, false)
		return
	}
	c.try.host, c.try.deadline = h, c.deadline
	oneway := c.req.Kind == codec.KindOneway
	if !oneway {
		if !ref.cl.TryRequest() {
			s.mirrors.done(c, false)
			return
		}
		c.try.rq = true
	}
	// Once sent, c belongs to its upstream (and then to the sink): it is
	// not touched here again.
	err := ss.enqueue(c, h)
	if err != nil || oneway {
		s.mirrors.done(c, err == nil)
	}
}

// mirrorSink owns mirrored copies: it counts their outcome and discards
// their answers.
type mirrorSink struct{ srv *Server }

func (m *mirrorSink) result(ex *exchange, f *failure) bool {
	m.done(ex, f == nil)
	return false
}

func (m *mirrorSink) flush() {}

func (m *mirrorSink) done(ex *exchange, ok bool) {
	ex.endTry()
	if !ok {
		m.srv.stats.RequestMirrorFailed.Add(1)
	}
	m.srv.stats.RequestMirrorActive.Add(-1)
	ex.release()
}
