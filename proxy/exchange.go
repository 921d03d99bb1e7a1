package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// owner is whoever an exchange answers to: the session of its client, the
// mirror sink that discards the answers to mirrored copies, a health
// prober. While an exchange is at an upstream the upstream holds it; it
// hands it back to its owner with the outcome of the attempt.
type owner interface {
	// result ends ex's current attempt: its response is in ex.resp when f
	// is nil, else f says why there is none. It reports whether the caller
	// must call flush once it has handed back the rest of its batch.
	result(ex *exchange, f *failure) (mustFlush bool)
	// flush writes what result queued.
	flush()
}

// cause is why an attempt ended without a response.
type cause uint8

const (
	// causeConnect: the attempt's connection never connected, or its host
	// backs off: the request was not sent.
	causeConnect cause = iota + 1
	// causeReset: the connection closed or failed after the request was
	// queued on it: the server may or may not have seen it.
	causeReset
	// causePerTryTimeout: the attempt's per-try timeout passed.
	causePerTryTimeout
	// causeTimeout: the request's deadline passed.
	causeTimeout
	// causeLocal: the proxy could not send or relay (encode error,
	// overload, a bad response): not the host's fault as such.
	causeLocal
	// causeHostGone: the attempt's host left its cluster before the
	// request was sent (errHostGone): it picks again (Session.repick).
	causeHostGone
)

// failure is an attempt's failure: its cause and the error the client gets
// if the request is not tried again.
type failure struct {
	cause cause
	err   *codec.Error
}

// exchange is one request in flight and, later, its response. Exchanges are
// pooled: at any time exactly one party holds an exchange (its owner while
// it runs filters and routes, an upstream connection while it waits for the
// response) and the holder hands it on or releases it.
type exchange struct {
	x       filter.Exchange
	req     codec.Message
	reqBuf  []byte
	resp    codec.Message
	respBuf []byte
	owner   owner
	snap    *snapshot   // the configuration the exchange was decoded under
	cl      *clusterRef // the cluster routed to
	lb      cluster.LBContext
	try     attempt // the attempt in flight
	tries   int     // attempts made
	retries int     // retries made under the route's retry policy
	repicks int     // picks again after the picked host left (Session.repick)
	// deadline is when the whole request times out (unix nanos, 0 = never).
	deadline int64
	paused   bool
	gen      atomic.Uint32 // counts releases: a timer of an earlier life is stale
	// unawaited: the (serial) client has sent another call since; no local
	// reply is sent for this one.
	unawaited bool
	// expired: answered with a timeout while a filter held it paused; it is
	// released when the filter resumes it.
	expired bool
	// seq is the exchange's place among its client's answers when they go
	// back in request order (ordered.go); 0 otherwise.
	seq uint64
	// part is the exchange's index among the parts of a split request
	// (fanout.go).
	part int
	// stream is the stream a stream's INIT opens (stream.go).
	stream *stream

	// The session's list of its exchanges in flight (guarded by the
	// session's lock), so that a closing client cancels them.
	prev, next *exchange
}

// attempt is one try of an exchange at one host: the connection it was
// queued on, its id there, and its deadline.
type attempt struct {
	host *cluster.Host
	up   *upstream
	upID uint64
	// deadline is unix nanos; 0 means none.
	deadline int64
	// sent is when the attempt was queued (unix nanos), for upstream_rq_time.
	sent int64
	// budget: this attempt is a retry and holds one of its cluster's
	// max_retries.
	budget bool
	// rq: the attempt holds one of its cluster's max_requests.
	rq bool
	// waiting is the pool the attempt waits in for a connection (waiters.go).
	waiting *pool
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

func newExchange(o owner, snap *snapshot) *exchange {
	ex := exchangePool.Get().(*exchange)
	ex.owner, ex.snap = o, snap
	return ex
}

func (ex *exchange) release() {
	ex.x.Reset()
	ex.req.Reset()
	ex.resp.Reset()
	if cap(ex.reqBuf) > 64<<10 {
		ex.reqBuf = nil
	}
	if cap(ex.respBuf) > 64<<10 {
		ex.respBuf = nil
	}
	ex.owner, ex.snap, ex.cl, ex.stream = nil, nil, nil, nil
	ex.lb, ex.try, ex.tries, ex.retries, ex.repicks, ex.deadline = cluster.LBContext{}, attempt{}, 0, 0, 0, 0
	ex.paused, ex.unawaited, ex.expired, ex.seq, ex.part = false, false, false, 0, 0
	ex.gen.Add(1)
	ex.prev, ex.next = nil, nil
	exchangePool.Put(ex)
}

// Resume implements filter.Resumer: a filter resumed the paused ex. Only
// sessions run filters, so the owner is a session.
func (ex *exchange) Resume(*filter.Exchange) { ex.owner.(*Session).resume(ex) }

// ResumedEarly implements filter.ResumeObserver: a Resume before Pause was
// returned is part of the contract; the chain goes on by itself.
func (ex *exchange) ResumedEarly(*filter.Exchange) {}

// ResumedStray implements filter.ResumeObserver: a filter resumed an
// exchange that is not paused (twice, or without pausing), which the chain
// ignored. It is counted: it is a filter's bug.
func (ex *exchange) ResumedStray(*filter.Exchange) {
	if ss, ok := ex.owner.(*Session); ok {
		ss.srv.stats.FilterResumeStray.Add(1)
	}
}
