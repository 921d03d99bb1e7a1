package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/transport"
)

// pool holds the upstream connections to one host for one codec variant.
// Multiplexed pools keep a fixed number of shared connections and rewrite
// request ids; exclusive pools lend an idle connection to each request and
// take it back after the response.
type pool struct {
	srv     *Server
	host    *cluster.Host
	cl      *cluster.Cluster // the host's cluster: circuit breakers, outlier detection
	addr    string
	timeout time.Duration
	mux     bool

	mu      sync.Mutex
	conns   []*upstream // multiplexed: fixed slots
	next    int
	idle    []*upstream // exclusive: connections waiting for a request
	waiters []*exchange // exclusive: requests waiting for a connection (waiters.go)
	closed  bool
	gone    bool // closed because its host left its cluster (drain), not by Server.Close

	open atomic.Int32 // its connections not yet shut, lent ones included
}

// errHostGone: the host a request picked left its cluster (an endpoint
// update removed it) before the request was sent there. The request picks
// again (Session.repick); it was never sent, so it is not a try.
var errHostGone = codec.Errorf(codec.ErrUnavailable, "metaproxy: the upstream host left its cluster")

// errListenerClosing: the Server is closing.
var errListenerClosing = codec.Errorf(codec.ErrUnavailable, "metaproxy: the listener is closing")

// closedErr is why a closed pool takes no request; p.mu is held.
func (p *pool) closedErr() *codec.Error {
	if p.gone {
		return errHostGone
	}
	return errListenerClosing
}

// send hands ex to an upstream connection. On error ex is still owned by
// the caller. The request is queued on the connection; a non-nil upstream
// must be flushed by the caller once its batch is complete.
//
// worker is the client's (transport.Placed): a multiplexed pool prefers an
// open connection on the same worker.
func (p *pool) send(ex *exchange, worker int32) (*upstream, error) {
	for range 2 { // a connection may close between pick and send: retry once
		u, err := p.pick(worker)
		if err == errAtCapacity {
			return nil, p.wait(ex)
		}
		if err != nil {
			return nil, err
		}
		oneway := ex.req.Kind == codec.KindOneway
		mustFlush, err := u.send(ex)
		if err == errUpstreamClosed {
			continue
		}
		var flush *upstream
		if mustFlush {
			flush = u
		}
		if err == nil && oneway && !p.mux {
			// No response will free the connection: it goes back to the
			// pool once the request is written (by the caller's flush, or
			// on connect).
			if flush != nil {
				u.giveBackOnFlush = true
			} else {
				p.giveBack(u)
			}
		}
		return flush, err
	}
	return nil, codec.Errorf(codec.ErrUnavailable, "metaproxy: upstream %s closed", p.addr)
}

func (p *pool) pick(worker int32) (*upstream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, p.closedErr()
	}
	if p.mux {
		// The requests of one batch (one client read, of one client or
		// many) go on one connection, in one write; the next batch
		// starts on the next connection, on the client's worker if it
		// has one (see transport.Placed).
		if u := p.batchOn(worker); u != nil {
			return u, nil
		}
		p.next = p.nextSlot(worker)
		u := p.conns[p.next]
		if u != nil && !u.isClosed() {
			return u, nil
		}
		u, err := p.dial()
		if err != nil {
			// The host backs off, or the cluster is at max_connections:
			// share a connection that is still open.
			if live := p.live(); live != nil {
				return live, nil
			}
			if err == errAtCapacity {
				err = p.atCapacity()
			}
			return nil, err
		}
		p.conns[p.next] = u
		return u, nil
	}
	for n := len(p.idle); n > 0; n = len(p.idle) {
		u := p.idle[n-1]
		p.idle = p.idle[:n-1]
		if !u.isClosed() {
			return u, nil
		}
	}
	return p.dial()
}

// batchOn returns the open multiplexed connection with a batch under way
// for a client on worker: the one p.next names if worker is 0 or its own,
// else one on worker. p.mu is held.
func (p *pool) batchOn(worker int32) *upstream {
	if u := p.conns[p.next]; u != nil && u.queued.Load() && !u.isClosed() && (worker == 0 || u.worker.Load() == worker) {
		return u
	}
	if worker == 0 {
		return nil
	}
	for _, u := range p.conns {
		if u != nil && u.queued.Load() && u.worker.Load() == worker && !u.isClosed() {
			return u
		}
	}
	return nil
}

// nextSlot returns the slot after p.next for a new batch: the first, in
// turn, that is empty or closed (a connection to dial: both hosts place a
// new connection on their workers in turn, so a pool that fills its slots
// spreads over them) or holds a connection on worker; the very next one if
// none does. p.mu is held.
func (p *pool) nextSlot(worker int32) int {
	first := (p.next + 1) % len(p.conns)
	if worker == 0 {
		return first
	}
	for i := range len(p.conns) {
		j := (first + i) % len(p.conns)
		if u := p.conns[j]; u == nil || u.isClosed() || u.worker.Load() == worker {
			return j
		}
	}
	return first
}

// live returns an open multiplexed connection, or nil; p.mu is held.
func (p *pool) live() *upstream {
	for _, u := range p.conns {
		if u != nil && !u.isClosed() {
			return u
		}
	}
	return nil
}

// dial starts a new connection unless the cluster is at its
// max_connections (errAtCapacity) or the host backs off after connect
// failures; p.mu is held. At max_connections a pool with no connection at
// all still dials one, as Envoy's do: its waiting requests would otherwise
// wait for a connection of its own to free up, and it has none.
func (p *pool) dial() (*upstream, error) {
	now := p.srv.now()
	if !p.cl.TryConnection() {
		if p.open.Load() > 0 {
			return nil, errAtCapacity
		}
		p.cl.ForceConnection()
	}
	if !p.host.TryConnect(now, p.timeout) {
		p.cl.EndConnection()
		p.srv.stats.UpstreamCxConnectBackoff.Add(1)
		return nil, codec.Errorf(codec.ErrUnavailable, "metaproxy: upstream %s unavailable: %d connect failures, next attempt in %v",
			p.addr, p.host.ConnectFailures(), p.host.BackingOff(now).Round(time.Millisecond))
	}
	u := &upstream{pool: p, srv: p.srv, codec: codec.NewCodecFor(p.srv.cfg.Codec, codec.SideUpstream), pending: map[uint64]*exchange{},
		fifo: codec.CapabilitiesOf(p.srv.cfg.Codec).OrderedResponses}
	p.srv.stats.UpstreamCxTotal.Add(1)
	p.open.Add(1)
	p.srv.trackUpstream(u, true)
	u.timer = time.AfterFunc(p.timeout, u.connectTimeout)
	p.srv.dialer.Dial(p.addr, u)
	return u, nil
}

// giveBack returns an exclusive connection after its response: to the
// first request waiting for one, else to the idle list. It runs with no
// session's lock held.
func (p *pool) giveBack(u *upstream) {
	p.mu.Lock()
	if ex := p.popWaiter(); ex != nil {
		p.mu.Unlock()
		ex.owner.(*Session).wake(ex, u)
		return
	}
	if p.closed || len(p.idle) >= maxIdleExclusivePerHost {
		p.mu.Unlock()
		u.close()
		return
	}
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

// drain stops p and closes its connections as they become idle: at once
// for those without a request in flight, after their last answer for the
// others.
func (p *pool) drain() {
	p.mu.Lock()
	p.closed, p.gone = true, true
	conns := append(p.idle, p.conns...)
	p.idle, p.conns = nil, nil
	waiters := p.takeWaiters()
	p.mu.Unlock()
	// Not sent: they pick a host again.
	failWaiters(waiters, &failure{causeHostGone, errHostGone})
	for _, u := range conns {
		if u != nil && u.drainWhenIdle() {
			u.close()
		}
	}
}

// drainWhenIdle marks u to close after its last pending answer and reports
// whether it is idle now.
func (u *upstream) drainWhenIdle() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.draining = true
	return len(u.pending) == 0 && len(u.streams) == 0
}

// close stops p from lending or dialling connections; the Server closes
// the connections themselves, lent ones included.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.idle = nil
	waiters := p.takeWaiters()
	p.mu.Unlock()
	failWaiters(waiters, &failure{causeLocal, errListenerClosing})
}

type upState uint8

const (
	upConnecting upState = iota
	upReady
	upClosed
)

var errUpstreamClosed = errors.New("upstream connection closed")

// upstream is one upstream connection. It implements transport.UpstreamHandler.
type upstream struct {
	pool   *pool
	srv    *Server
	timer  *time.Timer
	worker atomic.Int32 // the host's worker of conn (transport.Placed); 0 before connect or if unknown

	mu      sync.Mutex
	state   upState
	conn    transport.Conn
	codec   codec.Codec
	pending map[uint64]*exchange
	nextID  uint64
	wbuf    []byte // frames queued for the next flush (or until connected)
	// queued: a batch will flush wbuf. Written under mu; pick reads it
	// without, to send a batch's requests on the connection it started on.
	queued atomic.Bool
	// giveBackOnFlush returns an exclusive connection to its pool after
	// the flush that writes its oneway request.
	giveBackOnFlush bool
	// draining: u's host left its cluster; u closes once nothing is pending.
	draining bool
	// connecting counts the requests queued while u connects, each holding
	// one of the cluster's max_pending_requests.
	connecting int
	// fifo: answers carry no id and come in request order; a request's id
	// here is its place in that order, and answered counts the answers.
	fifo     bool
	answered uint64
	// streams are the streams bound to u, by their id here (stream.go).
	streams map[uint64]*stream
	scratch []byte
	rbuf    []byte
	edit    codec.Edit // reused: an Edit passed to a codec escapes

	// Used by OnData only; the host never calls OnData concurrently.
	spare     codec.Message
	spareBuf  []byte
	delivered []*exchange
	owners    []owner       // owners to flush after a batch of responses
	sin       []streamIn    // stream frames read, for their sessions
	sbuf      []byte        // their bytes
	smsg      codec.Message // scratch for handing them on
}

func (u *upstream) isClosed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state == upClosed
}

// send queues ex's request. It reports whether the caller must flush u
// (the first request queued since the last flush). On error ex is still
// owned by the caller.
func (u *upstream) send(ex *exchange) (mustFlush bool, err error) {
	s := u.srv
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == upClosed {
		return false, errUpstreamClosed
	}
	if len(u.wbuf) > s.maxBuf {
		s.stats.BufferOverflow.Add(1)
		return false, codec.Errorf(codec.ErrOverloaded, "metaproxy: too many bytes waiting for upstream %s", u.pool.addr)
	}
	twoway := twoWay(ex.req.Kind)
	if u.state == upConnecting {
		if !u.pool.cl.TryPending() {
			return false, codec.Errorf(codec.ErrOverloaded, "metaproxy: cluster %q is at its max_pending_requests (%d requests wait for a connection)",
				u.pool.cl.Name(), u.pool.cl.Thresholds().MaxPendingRequests)
		}
		u.connecting++
	}
	edit := &u.edit
	*edit = codec.Edit{Headers: ex.x.RequestHeaders}
	if u.pool.mux && twoway {
		u.nextID++
		edit.SetID, edit.ID = !u.fifo, u.nextID
	}
	out, err := s.encode(u.codec, u.wbuf, &ex.req, edit)
	if err != nil {
		return false, codec.Errorf(codec.ErrInternal, "metaproxy: cannot encode request: %v", err)
	}
	u.wbuf = out
	if twoway {
		id := edit.ID
		if !u.pool.mux {
			id = ex.req.ID
		}
		ex.try.host.Begin()
		ex.try.up, ex.try.upID = u, id
		u.pending[id] = ex
		if ex.stream != nil {
			u.bindStream(ex.stream, id)
		}
	}
	return u.startBatch(), nil
}

// startBatch reports whether this request starts u's next batch, which
// its caller then flushes; u.mu is held.
func (u *upstream) startBatch() bool {
	if u.queued.Load() || u.state != upReady {
		return false
	}
	u.queued.Store(true)
	return true
}

// flush writes the queued requests in one write.
// It is called with no session's lock held: a failed write fails u, which
// delivers errors to the sessions of its pending requests.
func (u *upstream) flush() {
	u.mu.Lock()
	u.queued.Store(false)
	giveBack := u.giveBackOnFlush
	u.giveBackOnFlush = false
	var err error
	if u.state == upReady && len(u.wbuf) > 0 {
		err = u.conn.Write(u.wbuf)
		if cap(u.wbuf) > 256<<10 {
			u.wbuf = nil
		} else {
			u.wbuf = u.wbuf[:0]
		}
	}
	u.mu.Unlock()
	if err != nil {
		if errors.Is(err, transport.ErrSlowPeer) {
			u.srv.stats.UpstreamCxSlowReader.Add(1)
		}
		u.fail(causeReset, codec.Errorf(codec.ErrUnavailable, "metaproxy: write to upstream %s: %v", u.pool.addr, err), true)
		return
	}
	if giveBack {
		u.pool.giveBack(u)
	}
}

// cancel takes ex back from u if u still waits for its response (a closing
// client's request); false means u already handed ex on to be delivered.
func (u *upstream) cancel(ex *exchange) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.pending[ex.try.upID] != ex {
		return false
	}
	delete(u.pending, ex.try.upID)
	return true
}

// OnConnect implements transport.UpstreamHandler.
func (u *upstream) OnConnect(c transport.Conn) {
	u.timer.Stop()
	u.mu.Lock()
	if u.state != upConnecting {
		u.mu.Unlock()
		c.Close(false)
		return
	}
	u.conn, u.state = c, upReady
	u.worker.Store(transport.WorkerOf(c))
	w := u.wbuf
	u.wbuf = nil
	u.queued.Store(false)
	waited := u.connecting
	u.connecting = 0
	u.mu.Unlock()
	u.pool.cl.EndPendingN(waited)
	u.pool.host.ConnectSucceeded()
	u.pool.cl.Report(u.pool.host, cluster.ResultConnectSuccess)
	if len(w) > 0 {
		if err := c.Write(w); err != nil {
			u.fail(causeReset, codec.Errorf(codec.ErrUnavailable, "metaproxy: write to upstream %s: %v", u.pool.addr, err), true)
		}
	}
}

// OnConnectFailure implements transport.UpstreamHandler.
func (u *upstream) OnConnectFailure(err error) {
	u.timer.Stop()
	u.srv.stats.UpstreamCxConnectFail.Add(1)
	if errors.Is(err, transport.ErrSelfConnect) {
		u.srv.stats.UpstreamCxSelfConnect.Add(1)
	}
	if localFailure(err) {
		// Out of descriptors or buffers here: not the host's fault, so
		// it is neither backed off from nor retried elsewhere.
		u.srv.stats.UpstreamCxLocalFail.Add(1)
		u.fail(causeLocal, codec.Errorf(codec.ErrUnavailable, "metaproxy: connect to upstream %s failed: %v", u.pool.addr, err), false)
		return
	}
	u.pool.host.ConnectFailed(u.srv.now())
	u.pool.cl.Report(u.pool.host, cluster.ResultConnectFailed)
	u.fail(causeConnect, codec.Errorf(codec.ErrUnavailable, "metaproxy: connect to upstream %s failed: %v", u.pool.addr, err), false)
}

// localFailure reports whether a connect failed for lack of a resource of
// this process or machine rather than because of the host.
func localFailure(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS)
}

func (u *upstream) connectTimeout() {
	u.mu.Lock()
	connecting := u.state == upConnecting
	u.mu.Unlock()
	if !connecting {
		return
	}
	u.srv.stats.UpstreamCxConnectFail.Add(1)
	u.pool.host.ConnectFailed(u.srv.now())
	u.pool.cl.Report(u.pool.host, cluster.ResultTimeout)
	u.fail(causeConnect, codec.Errorf(codec.ErrUnavailable, "metaproxy: connect to upstream %s timed out after %v", u.pool.addr, u.pool.timeout), true)
}

// OnData implements transport.UpstreamHandler.
func (u *upstream) OnData(b []byte) {
	s := u.srv
	defer func() {
		if p := recover(); p != nil {
			s.stats.PanicsContained.Add(1)
			s.log.Error("panic contained", "where", "upstream", "panic", p)
			u.fail(causeLocal, codec.Errorf(codec.ErrInternal, "metaproxy: internal error"), true)
		}
	}()
	u.mu.Lock()
	if u.state == upClosed {
		u.mu.Unlock()
		return
	}
	data := b
	if len(u.rbuf) > 0 {
		u.rbuf = append(u.rbuf, b...)
		data = u.rbuf
	}
	var bad error
	for len(data) > 0 {
		n, err := s.split(u.codec, data)
		if err != nil {
			bad = err
			break
		}
		if n == 0 {
			break
		}
		if err := u.frame(data[:n]); err != nil {
			bad = err
			break
		}
		data = data[n:]
	}
	switch {
	case bad != nil: // the connection fails below
	case len(data) > s.maxBuf:
		bad = errors.New("response over the buffer limit")
	case len(u.rbuf) > 0: // data is a suffix of rbuf
		u.rbuf = u.rbuf[:copy(u.rbuf, data)]
	default: // keep the partial response; b is only valid now
		u.rbuf = append(u.rbuf, data...)
	}
	delivered := u.delivered
	u.delivered = u.delivered[:0]
	idle := len(u.pending) == 0 && len(u.streams) == 0 && bad == nil
	exclusiveDone := !u.pool.mux && idle && (len(delivered) > 0 || len(u.sin) > 0)
	drained := u.draining && idle
	u.mu.Unlock()
	if drained {
		exclusiveDone = false
		defer u.close()
	}

	if exclusiveDone {
		// Back to the pool before the client sees the answer, so that its
		// next request finds the connection idle.
		u.pool.giveBack(u)
	}
	owners := deliverEach(delivered, nil, u.owners)
	owners = u.deliverStreams(owners)
	u.owners = flushOwners(owners)
	if bad != nil {
		s.stats.ResponseDecodingError.Add(1)
		s.log.Warn("closing upstream connection: bad response", "upstream", u.pool.addr, "err", bad)
		u.fail(causeLocal, codec.Errorf(codec.ErrBadResponse, "metaproxy: bad response from %s: %v", u.pool.addr, bad), true)
	}
}

// frame handles one response frame; u.mu is held.
func (u *upstream) frame(f []byte) error {
	s := u.srv
	u.spare.Reset()
	u.spareBuf = append(u.spareBuf[:0], f...)
	u.spare.Frame = u.spareBuf
	if err := s.decode(u.codec, u.spareBuf, &u.spare); err != nil {
		return err
	}
	s.stats.ResponseDecodingSuccess.Add(1)
	switch u.spare.Kind {
	case codec.KindHeartbeat:
		if u.spare.HeartbeatRequest && u.state == upReady {
			u.scratch = s.heartbeatReply(u.codec, u.scratch[:0], &u.spare)
			if len(u.scratch) > 0 {
				_ = u.conn.Write(u.scratch)
			}
		}
		return nil
	case codec.KindResponse, codec.KindError, codec.KindStreamInit:
	case codec.KindStreamData, codec.KindStreamClose:
		u.streamFrame()
		return nil
	default:
		s.log.Debug("dropping unexpected message from upstream", "upstream", u.pool.addr, "kind", u.spare.Kind)
		return nil
	}
	id := u.spare.ID
	if u.fifo {
		u.answered++
		id = u.answered
	}
	ex := u.pending[id]
	if ex == nil && !u.pool.mux && len(u.pending) == 1 {
		// One request per connection: the response is the answer to it
		// whatever id it carries (protocols without ids).
		for k, v := range u.pending {
			id, ex = k, v
		}
	}
	if ex == nil {
		s.stats.ResponseUnknownID.Add(1)
		return nil
	}
	delete(u.pending, id)
	ex.resp, u.spare = u.spare, ex.resp
	ex.respBuf, u.spareBuf = u.spareBuf, ex.respBuf
	u.delivered = append(u.delivered, ex)
	return nil
}

// OnClose implements transport.UpstreamHandler.
func (u *upstream) OnClose(err error) {
	msg := "metaproxy: upstream " + u.pool.addr + " closed the connection"
	if err != nil {
		msg += ": " + err.Error()
	}
	u.fail(causeReset, &codec.Error{Type: codec.ErrUnavailable, Message: msg}, false)
}

// fail closes u and ends the attempt of every request it held: c says why,
// e is the error their clients get unless they are tried again.
func (u *upstream) fail(c cause, e *codec.Error, closeConn bool) {
	exs, streams, shut := u.shut(closeConn)
	deliverAll(exs, &failure{c, e}, nil)
	u.loseStreams(streams, e)
	if shut && !u.pool.mux {
		u.pool.redial()
	}
}

// shut marks u closed, closes its connection if closeConn, gives back its
// place under the cluster's max_connections, and returns the exchanges it
// still held (the caller owns them now) and whether this call shut it.
func (u *upstream) shut(closeConn bool) ([]*exchange, map[uint64]*stream, bool) {
	u.mu.Lock()
	if u.state == upClosed {
		u.mu.Unlock()
		return nil, nil, false
	}
	u.state = upClosed
	u.srv.trackUpstream(u, false)
	pending, streams := u.pending, u.streams
	u.pending, u.streams = nil, nil
	c := u.conn
	u.wbuf, u.rbuf = nil, nil
	waited := u.connecting
	u.connecting = 0
	u.mu.Unlock()
	u.pool.cl.EndPendingN(waited)
	u.pool.cl.EndConnection()
	u.pool.open.Add(-1)
	if len(pending) > 0 {
		u.srv.stats.UpstreamCxClosedWithActiveRq.Add(1)
	}
	if c != nil && closeConn {
		c.Close(false)
	}
	exs := make([]*exchange, 0, len(pending))
	for _, ex := range pending {
		exs = append(exs, ex)
	}
	return exs, streams, true
}

// deliverAll hands each exchange back to its owner with its response (f
// nil) or the failure f, then flushes every owner that got something,
// once. It clears exs and returns owners emptied, for reuse.
func deliverAll(exs []*exchange, f *failure, owners []owner) []owner {
	return flushOwners(deliverEach(exs, f, owners))
}

// deliverEach hands each exchange back to its owner, as deliverAll does,
// and appends the owners to flush to owners; it clears exs.
func deliverEach(exs []*exchange, f *failure, owners []owner) []owner {
	var now int64
	for _, ex := range exs {
		ex.try.host.End()
		ex.cl.cl.Report(ex.try.host, outlierResult(ex, f))
		if f == nil && ex.try.sent != 0 {
			if now == 0 {
				now = time.Now().UnixNano()
			}
			ex.cl.cl.ObserveRqTime(time.Duration(now - ex.try.sent))
		}
		if o := ex.owner; o.result(ex, f) {
			owners = append(owners, o)
		}
	}
	clear(exs)
	return owners
}

// flushOwners flushes each owner once and returns owners emptied.
func flushOwners(owners []owner) []owner {
	for _, o := range owners {
		o.flush()
	}
	clear(owners)
	return owners[:0]
}

// outlierResult is how outlier detection counts the end of ex's attempt:
// its response (f nil) or failure f. A connect failure was counted once for
// its connection; the proxy's own failures are not the host's.
func outlierResult(ex *exchange, f *failure) cluster.Result {
	switch {
	case f == nil && ex.resp.Status == codec.StatusServerFailure:
		return cluster.ResultServerFailure
	case f == nil:
		return cluster.ResultSuccess
	case f.cause == causeReset:
		return cluster.ResultConnectFailed
	case f.cause == causePerTryTimeout, f.cause == causeTimeout:
		return cluster.ResultTimeout
	}
	return cluster.ResultNone
}

func (u *upstream) close() {
	u.fail(causeLocal, codec.Errorf(codec.ErrUnavailable, "metaproxy: upstream connection closed by the proxy"), true)
}
