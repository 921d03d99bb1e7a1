package proxy

import (
	"slices"
	"sync"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// Fan-out (codec.Fanout): a request naming keys that hash to different
// hosts of the route's cluster (Redis MGET, MSET, DEL... over shards) is
// split into one part per host, each sent as a request of its own, and the
// parts' answers are merged into the client's answer, in its place among
// the client's answers. A part that fails fails the whole request with
// that part's error (as Redis Cluster proxies answer): the other hosts'
// keys may have been written. A route that shards on the codec's key sticks
// to each key's host (cluster.LBContext.Sticky): when a shard is down its
// keys fail rather than move to a shard that does not have them. Parts are
// not retried or mirrored and do not
// take the cluster's max_requests; they count as upstream requests of
// their hosts (least request, outlier detection, upstream_rq_time).

// fanout is the owner of a split request's parts.
type fanout struct {
	ss     *Session
	parent *exchange
	groups [][]int // key groups of each part

	mu      sync.Mutex
	answers [][]byte
	failed  *codec.Error
	left    int
}

// split sends ex in parts when its keys hash to several hosts; ss.mu is
// held. It reports whether it took ex (false: route it whole).
func (ss *Session) split(ex *exchange, r *router.Route, f codec.Fanout) bool {
	keys, ok := f.FanoutKeys(nil, &ex.req)
	if !ok {
		return false
	}
	s := ss.srv
	cl := ex.cl.cl
	now := s.now()
	var hosts []*cluster.Host
	var groups [][]int
	for i, k := range keys {
		lb := partLB(r, &ex.req.Meta, f.FanoutKey(), k)
		h := cl.Pick(now, &lb)
		if h == nil {
			ss.localReply(ex, codec.Errorf(codec.ErrNoHealthyUpstream, "metaproxy: no healthy upstream in cluster %q", ex.x.Cluster))
			return true
		}
		j := slices.Index(hosts, h)
		if j < 0 {
			j = len(hosts)
			hosts, groups = append(hosts, h), append(groups, nil)
		}
		groups[j] = append(groups[j], i)
	}
	if len(hosts) == 1 {
		return false // one host has every key: the request goes whole
	}
	fo := &fanout{ss: ss, parent: ex, groups: groups, answers: make([][]byte, len(hosts)), left: len(hosts)}
	ex.x.Upstream = "fanout"
	s.stats.RequestTwoway.Add(1)
	s.stats.Request.Add(1)
	for j, h := range hosts {
		child := newExchange(fo, ex.snap)
		part, err := f.FanoutPart(child.reqBuf[:0], &ex.req, groups[j])
		if err != nil {
			child.release()
			fo.failPart(codec.Errorf(codec.ErrBadRequest, "metaproxy: cannot split the request: %v", err))
			continue
		}
		child.reqBuf = part
		child.req.Kind, child.req.Frame, child.req.Variant = codec.KindRequest, part, ex.req.Variant
		child.cl, child.deadline, child.part = ex.cl, ex.deadline, j
		child.x.Route, child.x.Cluster, child.x.Upstream = r, ex.x.Cluster, h.Addr
		child.try.host, child.try.deadline, child.try.sent = h, ex.deadline, now.UnixNano()
		var u *upstream
		p, err := s.pool(h, ex.req.Variant, ex.cl)
		if err == nil {
			u, err = p.send(child, ss.worker)
		}
		if u != nil {
			ss.dirty = append(ss.dirty, u)
		}
		if err != nil {
			child.release()
			fo.failPart(asCodecError(err))
		}
	}
	if fo.settled() {
		ss.fanoutDone(fo)
	}
	return true
}

// partLB is the load-balancing context of a request of one key group
// alone: the route's hash policy with the group's shard key in place of
// the request's.
func partLB(r *router.Route, md *codec.Metadata, key, value string) cluster.LBContext {
	c := cluster.LBContext{Sticky: true}
	for _, k := range r.HashPolicy {
		v, ok := md.Get(k)
		if k == key {
			v, ok = value, true
		}
		if ok {
			c.Hash = cluster.CombineHash(c.Hash, cluster.HashString(v), !c.HasHash)
			c.HasHash = true
		}
	}
	return c
}

// hashesOn reports whether r's hash policy uses the metadata key k.
func hashesOn(r *router.Route, k string) bool { return slices.Contains(r.HashPolicy, k) }

// failPart records a part that never reached its host.
func (fo *fanout) failPart(e *codec.Error) {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	if fo.failed == nil {
		fo.failed = e
	}
	fo.left--
}

// settled reports whether every part has ended.
func (fo *fanout) settled() bool {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	return fo.left == 0
}

// result implements owner: a part's answer or failure.
func (fo *fanout) result(child *exchange, f *failure) (mustFlush bool) {
	child.endTry()
	fo.mu.Lock()
	switch {
	case f != nil:
		if fo.failed == nil {
			fo.failed = f.err
		}
	default:
		fo.answers[child.part] = slices.Clone(child.resp.Frame)
	}
	fo.left--
	last := fo.left == 0
	fo.mu.Unlock()
	child.release()
	if !last {
		return false
	}
	ss := fo.ss
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.fanoutDone(fo)
	if ss.queued || (len(ss.wbuf) == 0 && len(ss.dirty) == 0) {
		return false
	}
	ss.queued = true
	return true
}

// flush implements owner.
func (fo *fanout) flush() { fo.ss.flush() }

// fanoutDone answers the split request from its parts; ss.mu is held.
func (ss *Session) fanoutDone(fo *fanout) {
	ex := fo.parent
	switch {
	case ss.closed:
		ss.finish(ex)
	case fo.failed != nil:
		ss.localReply(ex, fo.failed)
	default:
		n := len(ss.wbuf)
		out, err := ss.codec.(codec.Fanout).FanoutMerge(ss.wbuf, &ex.req, fo.groups, fo.answers)
		if err != nil {
			ss.wbuf = ss.wbuf[:n]
			ss.localReply(ex, codec.Errorf(codec.ErrBadResponse, "metaproxy: cannot merge the parts' answers: %v", err))
			return
		}
		ss.wbuf = out
		ex.x.Outcome.BytesOut = len(out) - n
		ss.place(ex, n)
		ss.srv.stats.Response.Add(1)
		ss.srv.stats.ResponseSuccess.Add(1)
		ss.finish(ex)
	}
}
