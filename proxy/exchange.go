package proxy

import (
	"sync"
	"sync/atomic"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// exchange is one request in flight and, later, its response. Exchanges are
// pooled: at any time exactly one party owns an exchange (the session while
// it runs filters, an upstream connection while it waits for the response)
// and the owner hands it on or releases it.
type exchange struct {
	x       filter.Exchange
	req     codec.Message
	reqBuf  []byte
	resp    codec.Message
	respBuf []byte
	sess    *Session
	host    *cluster.Host
	sentAt  int64 // unix nanos, for request timeouts
	paused  bool
	// filterState tells a Resume called while the filter's OnRequest is
	// still running (inline, or from another goroutine before Pause was
	// returned) from one that resumes a paused exchange.
	filterState atomic.Int32
	retried     bool // sent again after a connect failure
	// unawaited: the (serial) client has sent another call since; no local
	// reply is sent for this one.
	unawaited bool

	// While an upstream owns the exchange: the connection and the id it is
	// pending under (u.pending[upID] == ex), and the session's list of its
	// exchanges at upstreams (guarded by the session's lock), so that a
	// closing client cancels them.
	up         *upstream
	upID       uint64
	prev, next *exchange
}

var exchangePool = sync.Pool{New: func() any { return new(exchange) }}

func newExchange(s *Session) *exchange {
	ex := exchangePool.Get().(*exchange)
	ex.sess = s
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
	ex.sess, ex.host, ex.sentAt, ex.paused, ex.retried, ex.unawaited = nil, nil, 0, false, false, false
	ex.up, ex.upID, ex.prev, ex.next = nil, 0, nil, nil
	exchangePool.Put(ex)
}

// States of exchange.filterState.
const (
	filterIdle         int32 = iota
	filterRunning            // OnRequest has not returned
	filterResumedEarly       // Resume came before OnRequest returned Pause
)

// Resume implements filter.Resumer. A Resume before the filter's Pause has
// been returned only marks the exchange: the session, which holds its lock
// while the filter runs, goes on when Pause comes back (taking the lock
// here would deadlock an inline Resume).
func (ex *exchange) Resume(*filter.Exchange) {
	if ex.filterState.CompareAndSwap(filterRunning, filterResumedEarly) {
		return
	}
	ex.sess.resume(ex)
}
