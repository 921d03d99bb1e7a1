package proxy

import (
	"errors"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
)

// A request that could not be sent — its host backs off, or its upstream
// connection never connected — is retried once on another host of its
// cluster before its caller gets an error (upstream_rq_retry). Retries of
// requests that were sent belong to the route's retry policy.

// failConnect fails u, which never connected, retrying each request it
// held on another host; the others get e.
func (u *upstream) failConnect(e *codec.Error, closeConn bool) {
	exs := u.shut(closeConn)
	failed := exs[:0]
	for _, ex := range exs {
		if !ex.sess.retryElsewhere(ex, u.pool.host) {
			failed = append(failed, ex)
		}
	}
	clear(exs[len(failed):])
	deliverAll(failed, e, nil)
}

// retryElsewhere sends ex, whose connection to failed never connected, to
// another healthy host of its cluster. It reports false, leaving ex to the
// caller, when ex was retried already, its client is gone or no other host
// is there.
func (ss *Session) retryElsewhere(ex *exchange, failed *cluster.Host) bool {
	s := ss.srv
	ss.mu.Lock()
	defer ss.unlock()
	if ss.closed {
		return false
	}
	cl := s.clusters.Get(ex.x.Cluster)
	if cl == nil {
		return false
	}
	err, ok := ss.sendElsewhere(ex, cl, failed)
	if !ok {
		return false
	}
	failed.End() // it held ex until now
	if err != nil {
		ss.localReply(ex, err)
	}
	return true
}

// sendElsewhere sends ex, which could not be sent to failed, to another
// healthy host of cl. ok is false, and ex untouched, when ex was retried
// already or no other host is there; ss.mu is held.
func (ss *Session) sendElsewhere(ex *exchange, cl *cluster.Cluster, failed *cluster.Host) (err *codec.Error, ok bool) {
	if ex.retried {
		return nil, false
	}
	h := otherHost(cl, failed, ss.srv)
	if h == nil {
		return nil, false
	}
	ex.retried = true
	ss.srv.stats.UpstreamRqRetry.Add(1)
	return ss.sendTo(ex, cl, h), true
}

// sendTo queues ex on a connection to h; ss.mu is held. On error ex is
// still the caller's.
func (ss *Session) sendTo(ex *exchange, cl *cluster.Cluster, h *cluster.Host) *codec.Error {
	ex.host, ex.x.Upstream = h, h.Addr
	u, err := ss.srv.pool(h, ex.req.Variant, cl).send(ex)
	if u != nil {
		ss.dirty = append(ss.dirty, u)
	}
	if err == nil {
		return nil
	}
	var ce *codec.Error
	if !errors.As(err, &ce) {
		ce = &codec.Error{Type: codec.ErrInternal, Message: err.Error()}
	}
	return ce
}

// otherHost picks a healthy host of cl other than failed, or nil.
func otherHost(cl *cluster.Cluster, failed *cluster.Host, s *Server) *cluster.Host {
	now := s.now()
	for range len(cl.Hosts()) {
		if h := cl.Pick(now); h != nil && h != failed && h.Healthy(now) {
			return h
		}
	}
	return nil
}
