package proxy

import (
	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// The router stage: after the filters, an exchange is matched to a route,
// its cluster chosen, its request mutated, copies sent to mirror clusters,
// and then tried at a host of the cluster, again at another after a
// failure the route's retry policy covers (retry.go). Every path out of
// the router either queues an attempt at an upstream or answers locally.

// route routes ex; ss.mu is held.
func (ss *Session) route(ex *exchange) {
	if ss.bound != nil { // server-first: the connection's upstream is chosen
		ss.forwardBound(ex)
		return
	}
	snap := ex.snap
	r := snap.routes.Match(&ex.req.Meta)
	if r == nil {
		ss.localReply(ex, codec.Errorf(codec.ErrRouteNotFound, "metaproxy: no route for %s %s.%s", ss.srv.cfg.Protocol,
			ex.req.Meta.Value(codec.KeyService), ex.req.Meta.Value(codec.KeyMethod)))
		return
	}
	name := r.PickCluster()
	ex.x.Route, ex.x.Cluster = r, name
	ref := snap.clusters[name]
	if ref == nil {
		ss.localReply(ex, codec.Errorf(codec.ErrClusterNotFound, "metaproxy: unknown cluster %q", name))
		return
	}
	ex.cl = ref
	for _, kv := range r.RequestMutation {
		ex.x.SetRequestHeader(kv.Key, kv.Value)
	}
	for _, kv := range r.ResponseMutation {
		ex.x.SetResponseHeader(kv.Key, kv.Value)
	}
	if r.Timeout > 0 {
		ex.deadline = ex.x.Start.Add(r.Timeout).UnixNano()
	}
	ex.lb = lbContext(r, &ex.req.Meta)
	if f := ss.fanout; f != nil && ex.req.Kind == codec.KindRequest && hashesOn(r, f.FanoutKey()) {
		ex.lb.Sticky = true // a key lives on its shard (see fanout.go)
		if _, ok := ex.req.Meta.Get(f.FanoutKey()); !ok && len(ex.cl.cl.Hosts()) > 1 {
			ss.localReply(ex, codec.Errorf(codec.ErrBadRequest, "metaproxy: %s has no key to shard on; it is not run across the shards of cluster %q",
				ex.req.Meta.Value(codec.KeyMethod), ex.x.Cluster))
			return
		}
		if ss.split(ex, r, f) {
			return
		}
	}
	if len(r.Mirrors) > 0 {
		ss.mirror(ex, r)
	}
	ss.attempt(ex)
}

// lbContext computes the request's hash key from the route's hash policy:
// the values of the listed metadata keys, each hashed and combined as
// Envoy combines hash policies. No value present means no hash.
func lbContext(r *router.Route, md *codec.Metadata) cluster.LBContext {
	var c cluster.LBContext
	for _, k := range r.HashPolicy {
		if v, ok := md.Get(k); ok {
			c.Hash = cluster.CombineHash(c.Hash, cluster.HashString(v), !c.HasHash)
			c.HasHash = true
		}
	}
	return c
}

// attempt tries ex at a host of its cluster, avoiding ex.lb.Exclude; ss.mu
// is held. A host that cannot take the request (it backs off after connect
// failures) is a failure of the attempt like any other.
func (ss *Session) attempt(ex *exchange) {
	s := ss.srv
	cl := ex.cl.cl
	h := cl.Pick(ss.clock(), &ex.lb)
	if h == nil {
		ss.localReply(ex, codec.Errorf(codec.ErrNoHealthyUpstream, "metaproxy: no healthy upstream in cluster %q", ex.x.Cluster))
		return
	}
	if twoWay(ex.req.Kind) {
		if !cl.TryRequest() {
			ss.localReply(ex, codec.Errorf(codec.ErrOverloaded, "metaproxy: cluster %q is at its max_requests (%d)", ex.x.Cluster, cl.Thresholds().MaxRequests))
			return
		}
		ex.try.rq = true
	}
	ex.tries++
	ex.x.Upstream = h.Addr
	if st := ex.stream; st != nil {
		st.unbind() // an INIT tried again: it was not sent where it was bound
	}
	if err := ss.sendTo(ex, h); err != nil {
		f := failure{cause: causeLocal, err: err}
		switch {
		case err == errHostGone:
			f.cause = causeHostGone
		case err.Type == codec.ErrUnavailable:
			f.cause = causeConnect
		}
		ex.endTry()
		if !ss.retry(ex, &f) {
			ss.localReply(ex, err)
		}
		return
	}
	if ex.req.Kind == codec.KindOneway {
		s.stats.RequestOneway.Add(1)
		s.stats.Request.Add(1)
		ex.x.Outcome.Oneway = true
		ss.finish(ex)
		return
	}
	if !ss.linked(ex) {
		ss.link(ex)
		s.stats.RequestTwoway.Add(1)
		s.stats.Request.Add(1)
	}
}

// sendTo queues ex on a connection to h; ss.mu is held. On error ex is
// still the caller's.
func (ss *Session) sendTo(ex *exchange, h *cluster.Host) *codec.Error {
	now := ss.clock()
	ex.try.host = h
	ex.try.deadline = ex.deadline
	ex.try.sent = now.UnixNano()
	if r := ex.x.Route; r != nil && r.Retry.PerTryTimeout > 0 {
		if d := now.Add(r.Retry.PerTryTimeout).UnixNano(); ex.deadline == 0 || d < ex.deadline {
			ex.try.deadline = d
		}
	}
	if err := ss.enqueue(ex, h); err != nil {
		return asCodecError(err)
	}
	return nil
}

// enqueue queues ex on a connection of h's pool, to be flushed when ss.mu
// is released; ss.mu is held. On error ex is still the caller's.
func (ss *Session) enqueue(ex *exchange, h *cluster.Host) error {
	p, err := ss.srv.pool(h, ex.req.Variant, ex.cl)
	if err != nil {
		return err
	}
	u, err := p.send(ex, ss.worker)
	if u != nil {
		ss.dirty = append(ss.dirty, u)
	}
	return err
}
