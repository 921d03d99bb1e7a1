package proxy

import (
	"errors"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/transport"
)

// Session is one downstream connection.
type Session struct {
	srv    *Server
	conn   transport.Conn
	remote string
	worker int32 // the host's worker of conn (transport.Placed), or 0

	mu       sync.Mutex
	codec    codec.Codec
	serial   codec.Serial        // codec, if it declares the capability
	local    codec.LocalAnswerer // codec, if it answers some requests itself
	fanout   codec.Fanout        // codec, if its requests may split across hosts
	bound    *bound              // the upstream of a server-first connection (bound.go)
	streams  map[uint64]*stream  // the client's streams by its stream id (stream.go)
	streamOK bool                // the codec carries streams
	order                        // answers in request order (ordered.go), when ordered
	ordered  bool
	buf      []byte      // unconsumed bytes: at most a partial frame
	wbuf     []byte      // bytes for the client, flushed once per batch
	queued   bool        // an upstream batch will flush wbuf
	dirty    []*upstream // upstreams with requests to flush
	edit     codec.Edit  // reused: an Edit passed to a codec escapes
	closed   bool
	readDone bool      // the client half-closed: no more requests
	draining bool      // the listener shuts down: close once idle
	active   int       // exchanges owned by this session or in flight for it
	inflight *exchange // exchanges at upstreams (a list through ex.next)
	toClose  []*upstream
	held     int // len(buf) counted in the listener's buffered bytes
	lastData time.Time
	idle     *time.Timer
	// at is the time the bytes being handled were read, shared by every
	// frame of the read (see clock); zero outside OnData.
	at time.Time

	partialSince time.Time   // when the partial frame in buf began
	frameTimer   *time.Timer // enforces FrameReceiveTimeout
	frameArmed   bool
}

// NewSession starts a session for a new downstream connection c.
func (s *Server) NewSession(c transport.Conn, remote string) *Session {
	ss := &Session{srv: s, conn: c, remote: remote, codec: codec.NewCodecFor(s.cfg.Codec, codec.SideDownstream), lastData: s.now(),
		worker: transport.WorkerOf(c)}
	ss.serial, _ = ss.codec.(codec.Serial)
	ss.local, _ = ss.codec.(codec.LocalAnswerer)
	ss.fanout, _ = ss.codec.(codec.Fanout)
	ss.ordered = codec.CapabilitiesOf(s.cfg.Codec).OrderedResponses
	ss.streamOK = codec.CapabilitiesOf(s.cfg.Codec).Streams
	s.stats.CxTotal.Add(1)
	s.stats.CxActive.Add(1)
	if s.cfg.IdleTimeout > 0 {
		ss.mu.Lock()
		ss.idle = time.AfterFunc(s.cfg.IdleTimeout, ss.checkIdle)
		ss.mu.Unlock()
	}
	if codec.CapabilitiesOf(s.cfg.Codec).ServerFirst {
		ss.mu.Lock()
		ss.startBound()
		ss.unlock()
	}
	return ss
}

// OnData feeds bytes read from the client. b is only valid during the call.
// OnData never blocks on the network.
func (ss *Session) OnData(b []byte) {
	ss.mu.Lock()
	defer ss.unlock()
	defer ss.containLocked("session")
	if ss.closed || ss.readDone || len(b) == 0 {
		return
	}
	ss.at = ss.srv.now()
	defer func() { ss.at = time.Time{} }()
	ss.onData(b)
}

// clock returns the time for the frame being handled: the time its bytes
// were read, one clock read for every frame of a read (a pipelined batch
// of Redis commands, say), else now; ss.mu is held.
func (ss *Session) clock() time.Time {
	if !ss.at.IsZero() {
		return ss.at
	}
	return ss.srv.now()
}

// containLocked turns a panic into the connection's closure; ss.mu is held.
func (ss *Session) containLocked(where string) {
	if p := recover(); p != nil {
		ss.srv.stats.PanicsContained.Add(1)
		ss.srv.log.Error("panic contained", "where", where, "peer", ss.remote, "panic", p)
		ss.closeLocked(false)
	}
}

// onData splits b into frames and handles them; ss.mu is held.
func (ss *Session) onData(b []byte) {
	s := ss.srv
	if ss.idle != nil {
		ss.lastData = ss.clock()
	}
	if ss.bound != nil {
		if b = ss.boundData(b); len(b) == 0 {
			return
		}
	}
	data := b
	if len(ss.buf) > 0 {
		if len(ss.buf)+len(b) > s.maxBuf {
			s.stats.BufferOverflow.Add(1)
			s.log.Warn("closing connection: buffered bytes over the limit", "peer", ss.remote, "limit", s.maxBuf)
			ss.reject(ss.buf, "frame over the connection's buffer limit")
			return
		}
		ss.buf = append(ss.buf, b...)
		data = ss.buf
	}
	progress := false // a frame completed
	for len(data) > 0 && !ss.closed {
		n, err := s.split(ss.codec, data)
		if err != nil {
			s.stats.RequestDecodingError.Add(1)
			s.log.Warn("closing connection: malformed frame", "peer", ss.remote, "err", err)
			ss.reject(data, err.Error())
			return
		}
		if n == 0 {
			break
		}
		ss.frame(data[:n])
		data = data[n:]
		progress = true
		if bd := ss.bound; bd != nil && len(data) > 0 && (bd.waiting != nil || ss.opaque()) {
			rest := append([]byte(nil), data...) // data may alias ss.buf
			data, ss.buf = nil, ss.buf[:0]
			ss.onData(rest)
			break
		}
	}
	if ss.closed {
		ss.buf = nil
		return
	}
	if len(data) > s.maxBuf {
		s.stats.BufferOverflow.Add(1)
		s.log.Warn("closing connection: partial frame over the buffer limit", "peer", ss.remote, "limit", s.maxBuf)
		ss.reject(data, "frame over the connection's buffer limit")
		return
	}
	if !ss.holdPartial(data) {
		return
	}
	ss.timePartial(len(data) > 0, progress)
	// Keep the partial frame. copy handles the overlap when data is a
	// suffix of ss.buf.
	if len(data) == 0 {
		ss.buf = ss.buf[:0]
		if cap(ss.buf) > 64<<10 {
			ss.buf = nil // an idle connection holds no large buffer
		}
	} else if len(ss.buf) > 0 {
		ss.buf = ss.buf[:copy(ss.buf, data)]
	} else {
		ss.buf = append(ss.buf[:0], data...)
	}
}

// opaque reports whether the codec stopped parsing (a switch to TLS).
func (ss *Session) opaque() bool {
	o, ok := ss.codec.(opaquer)
	return ok && o.Opaque()
}

// reject answers the refused frame starting buf with a native error when
// the codec can (codec.Rejecter), then closes the connection; ss.mu is held.
func (ss *Session) reject(buf []byte, why string) { ss.rejectAs(codec.ErrBadRequest, buf, why) }

func (ss *Session) rejectAs(t codec.ErrorType, buf []byte, why string) {
	if r, ok := ss.codec.(codec.Rejecter); ok {
		ss.wbuf = ss.srv.rejectReply(r, ss.wbuf, buf, &codec.Error{Type: t, Message: why})
	}
	ss.closeLocked(true)
}

// frame handles one complete frame; ss.mu is held.
func (ss *Session) frame(f []byte) {
	s := ss.srv
	ex := newExchange(ss, s.snap.Load())
	ex.reqBuf = append(ex.reqBuf[:0], f...)
	ex.req.Frame = ex.reqBuf
	if err := s.decode(ss.codec, ex.reqBuf, &ex.req); err != nil {
		s.stats.RequestDecodingError.Add(1)
		s.log.Warn("closing connection: undecodable request", "peer", ss.remote, "err", err)
		if twoWay(ex.req.Kind) {
			ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &ex.req, &codec.Error{Type: codec.ErrBadRequest, Message: err.Error()})
		}
		ex.release()
		ss.closeLocked(true)
		return
	}
	switch ex.req.Kind {
	case codec.KindHeartbeat:
		s.stats.RequestEvent.Add(1)
		if ex.req.HeartbeatRequest {
			ss.wbuf = s.heartbeatReply(ss.codec, ss.wbuf, &ex.req)
		}
		ex.release()
	case codec.KindRequest, codec.KindOneway:
		s.stats.RequestDecodingSuccess.Add(1)
		if ss.local != nil && ss.answerLocally(ex) {
			return
		}
		if ss.ordered && ex.req.Kind == codec.KindRequest {
			ex.seq = ss.nextSeq()
		}
		if ss.overloaded(ex) {
			ex.release()
			return
		}
		ss.start(ex, len(f))
	case codec.KindStreamInit:
		if !ss.streamOK || ss.overloaded(ex) || !ss.openStream(ex) {
			ex.release()
			return
		}
		ss.start(ex, len(f))
	case codec.KindStreamData, codec.KindStreamClose:
		if !ss.streamOK {
			ex.release()
			return
		}
		ss.streamFrame(ex)
	default:
		// Responses from a client are not proxied.
		s.log.Debug("dropping unexpected message from client", "peer", ss.remote, "kind", ex.req.Kind)
		ex.release()
	}
}

// start runs a request (or a stream's INIT) of n bytes through the filters
// and the router; ss.mu is held.
func (ss *Session) start(ex *exchange, n int) {
	s := ss.srv
	ss.supersede()
	ss.active++
	s.stats.RequestActive.Add(1)
	ex.x.Request = &ex.req
	ex.x.Start = ss.clock()
	ex.x.Downstream = ss.remote
	ex.x.Outcome.BytesIn = n
	if t := s.cfg.RequestTimeout; t > 0 {
		ex.deadline = ex.x.Start.Add(t).UnixNano()
	}
	ex.snap.chain.Start(&ex.x, ex)
	ss.runFilters(ex)
}

// runFilters runs the request filters from where ex stopped, then the
// router; ss.mu is held.
func (ss *Session) runFilters(ex *exchange) {
	switch ex.snap.chain.Run(&ex.x) {
	case filter.Pause:
		ex.paused = true
		ss.link(ex)
		ss.timePause(ex)
		if ss.bound != nil {
			ss.bound.waiting = ex
		}
	case filter.Stop:
		ss.localReply(ex, ex.x.LocalReply)
	default:
		ss.route(ex)
	}
}

// resume goes on with ex, which a filter resumed.
func (ss *Session) resume(ex *exchange) {
	ss.mu.Lock()
	defer ss.unlock()
	defer ss.containLocked("resume")
	if !ex.paused {
		ss.srv.log.Error("filter resumed an exchange that was not paused")
		return
	}
	ex.paused = false
	ss.unlink(ex)
	if ex.expired {
		ex.x.Outcome.Local, ex.x.Outcome.ErrorType = true, codec.ErrTimeout
		ss.finish(ex)
		return
	}
	if ss.closed {
		ss.finish(ex)
		return
	}
	if ex.x.LocalReply != nil {
		ss.localReply(ex, ex.x.LocalReply)
		return
	}
	ss.runFilters(ex)
}

// localReply answers ex with a native error and ends it; ss.mu is held.
func (ss *Session) localReply(ex *exchange, e *codec.Error) {
	s := ss.srv
	ex.x.LocalReply = e
	ex.x.Outcome.Local, ex.x.Outcome.ErrorType = true, e.Type
	if ex.unawaited {
		s.stats.LocalReplySuppressed.Add(1)
	} else if twoWay(ex.req.Kind) && !ss.closed {
		ex.snap.chain.Respond(&ex.x)
		s.stats.LocalResponseBusinessException.Add(1)
		n := len(ss.wbuf)
		ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &ex.req, e)
		ex.x.Outcome.BytesOut = len(ss.wbuf) - n
		ss.place(ex, n)
	}
	ss.finish(ex)
}

// result implements owner: an upstream hands ex back with its response
// (f nil) or the failure of its attempt. A failure or server failure the
// route's retry policy covers sends ex again; anything else answers the
// client, queued in the session's write buffer.
func (ss *Session) result(ex *exchange, f *failure) (mustFlush bool) {
	s := ss.srv
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ex.endTry()
	if ss.closed {
		s.stats.ResponseErrorCausedConnClose.Add(1)
		ss.finish(ex)
		return false
	}
	if f == nil && ex.deadline != 0 && s.now().UnixNano() >= ex.deadline {
		// The answer came after the request's deadline, before the
		// sweeper saw it: the deadline holds, to the nanosecond.
		s.stats.RequestTimeout.Add(1)
		ex.cl.cl.Stats().UpstreamRqTimeout.Add(1)
		f = &failure{causeTimeout, codec.Errorf(codec.ErrTimeout, "metaproxy: no response from %s in time", ex.x.Upstream)}
	}
	retried := ex.retries > 0
	switch {
	case f == nil && ex.resp.Status == codec.StatusServerFailure && ss.retry(ex, nil):
	case f != nil && ss.retry(ex, f):
	case f != nil:
		ss.localReply(ex, f.err)
	default:
		if retried {
			s.stats.UpstreamRqRetrySuccess.Add(1)
		}
		ss.respond(ex)
	}
	if ss.queued || (len(ss.wbuf) == 0 && len(ss.dirty) == 0) {
		return false
	}
	ss.queued = true
	return true
}

// respond encodes the upstream response of ex for the client; ss.mu is held.
func (ss *Session) respond(ex *exchange) {
	s := ss.srv
	ex.x.Response = &ex.resp
	ex.x.Outcome.Status = ex.resp.Status
	ex.snap.chain.Respond(&ex.x)
	edit := &ss.edit
	*edit = codec.Edit{SetID: s.cfg.Multiplexing, ID: ex.req.ID, Headers: ex.x.ResponseHeaders}
	n := len(ss.wbuf)
	out, err := s.encode(ss.codec, ss.wbuf, &ex.resp, edit)
	if err != nil && len(edit.Headers) > 0 && errors.Is(err, codec.ErrUnsupported) {
		edit.Headers = nil
		out, err = s.encode(ss.codec, ss.wbuf[:n], &ex.resp, edit)
	}
	if err != nil {
		ss.wbuf = ss.wbuf[:n]
		s.log.Warn("cannot encode response", "peer", ss.remote, "err", err)
		ex.x.Response = nil
		ss.localReply(ex, codec.Errorf(codec.ErrBadResponse, "metaproxy: cannot encode response: %v", err))
		return
	}
	ss.wbuf = out
	ex.x.Outcome.BytesOut = len(out) - n
	ss.place(ex, n)
	s.stats.Response.Add(1)
	if ex.resp.Status == codec.StatusOK {
		s.stats.ResponseSuccess.Add(1)
	} else {
		s.stats.ResponseError.Add(1)
	}
	ss.finish(ex)
}

// flush implements owner: it writes what result queued.
func (ss *Session) flush() {
	ss.mu.Lock()
	ss.unlock()
}

// unlock writes the bytes queued for the client, releases ss.mu, then sends
// the requests queued on upstreams, each batch in one write. The upstream
// writes run without the session's lock: a failed write fails its upstream,
// whose failure handling delivers errors to its sessions, this one included.
// No call that can re-enter a session is made with ss.mu held.
func (ss *Session) unlock() {
	ss.flushLocked()
	var arr [8]*upstream
	dirty := append(arr[:0], ss.dirty...)
	clear(ss.dirty)
	ss.dirty = ss.dirty[:0]
	toClose := ss.toClose
	ss.toClose = nil
	ss.mu.Unlock()
	for _, u := range dirty {
		u.flush()
	}
	for _, u := range toClose {
		u.close()
	}
}

// flushLocked writes the bytes queued for the client in one write; ss.mu is
// held. The host's Write never calls back into the engine.
func (ss *Session) flushLocked() {
	ss.queued = false
	if len(ss.wbuf) == 0 || ss.closed {
		return
	}
	err := ss.conn.Write(ss.wbuf)
	if cap(ss.wbuf) > 256<<10 {
		ss.wbuf = nil
	} else {
		ss.wbuf = ss.wbuf[:0]
	}
	if err != nil {
		if errors.Is(err, transport.ErrSlowPeer) {
			ss.srv.stats.CxSlowReader.Add(1)
			ss.srv.log.Warn("closing connection: client not reading its answers", "peer", ss.remote)
		}
		ss.closeLocked(false)
	}
}
