package proxy

import (
	"github.com/metaproxy/metaproxy/codec"
)

// Streams (codec.Capabilities.Streams: tRPC). A stream is routed once, at
// its INIT, which runs the filters and the router as a request does and is
// answered as one (its deadline, retries of an INIT never sent, access
// logs and stats are a request's). From the moment the INIT is queued the
// stream is bound to that upstream connection under an id of its own
// there (streams of many clients share a multiplexed connection; an
// exclusive one is held by the stream until it ends). Once the INIT is
// answered OK the stream is open: its frames (DATA, flow-control
// FEEDBACK, CLOSE) pass both ways with only their stream id rewritten,
// and no request deadline applies; the connection's idle_timeout counts
// traffic either way. A client frame that comes before the stream opens
// waits for it.
//
// A stream ends when the server's CLOSE reaches the client, when either
// side resets it, or when the proxy does: the client closes its
// connection (the server gets a RESET), the upstream connection dies (the
// client gets the codec's native reset carrying the error), a frame cannot
// be queued. The engine writes those ends with the codec's ErrorReply of a
// stream message, which the conformance kit checks.

// stream is one proxied stream. Its fields are guarded by its session's
// lock.
type stream struct {
	ss   *Session
	id   uint64    // the client's stream id
	up   *upstream // the connection its INIT was queued on; nil before
	upID uint64    // the stream's id on up
	open bool      // the INIT was answered OK: frames flow
	held []byte    // client frames that came before the stream opened
}

// twoWay reports whether a message of kind k is answered: a request, or a
// stream's INIT.
func twoWay(k codec.Kind) bool { return k == codec.KindRequest || k == codec.KindStreamInit }

// openStream registers the stream a client's INIT ex starts, or answers
// the INIT with an error and reports false: its id is in use, or the
// connection has max_active_requests_per_connection streams open already;
// ss.mu is held.
func (ss *Session) openStream(ex *exchange) bool {
	s := ss.srv
	id := ex.req.StreamID
	if _, dup := ss.streams[id]; dup || id == 0 {
		s.stats.LocalResponseBusinessException.Add(1)
		ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &ex.req, codec.Errorf(codec.ErrBadRequest, "metaproxy: stream id %d is in use or invalid", id))
		return false
	}
	if max := s.cfg.MaxActiveRequestsPerConnection; max > 0 && len(ss.streams) >= max {
		s.stats.RequestOverflow.Add(1)
		s.stats.LocalResponseBusinessException.Add(1)
		ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &ex.req, codec.Errorf(codec.ErrOverloaded, "metaproxy: too many streams open on this connection (%d)", max))
		return false
	}
	if ss.streams == nil {
		ss.streams = map[uint64]*stream{}
	}
	st := &stream{ss: ss, id: id}
	ss.streams[id] = st
	ex.stream = st
	s.stats.StreamTotal.Add(1)
	s.stats.StreamActive.Add(1)
	return true
}

// initEnded settles the stream of the INIT exchange ex as ex finishes: it
// opens when the INIT was answered OK, and ends otherwise; ss.mu is held.
func (ss *Session) initEnded(ex *exchange) {
	st := ex.stream
	ex.stream = nil
	if ss.streams[st.id] != st {
		return // ended already: its client is gone
	}
	if ex.x.Response == nil || ex.resp.Status != codec.StatusOK || ss.closed || st.up == nil {
		// Refused here or by the server, or never answered: a server that
		// may have the stream (the INIT left, its answer did not come) is
		// told it is over.
		ss.endStream(st, ex.x.Response == nil)
		return
	}
	st.open = true
	held := st.held
	st.held = nil
	ss.replay(st, held)
}

// replay sends the client frames that waited for st to open; ss.mu is held.
func (ss *Session) replay(st *stream, held []byte) {
	c := codec.NewCodecFor(ss.srv.cfg.Codec, codec.SideDownstream)
	var m codec.Message
	for len(held) > 0 && ss.streams[st.id] == st {
		n, err := c.Split(held)
		if err != nil || n == 0 {
			return // decoded once already: cannot happen
		}
		m.Reset()
		m.Frame = held[:n]
		if c.Decode(held[:n], &m) == nil {
			ss.clientStreamFrame(st, &m)
		}
		held = held[n:]
	}
}

// streamFrame handles a client's DATA or CLOSE frame, in ex; ss.mu is held.
func (ss *Session) streamFrame(ex *exchange) {
	defer ex.release()
	s := ss.srv
	st := ss.streams[ex.req.StreamID]
	if st == nil {
		s.stats.StreamFrameUnknown.Add(1)
		return
	}
	if !st.open {
		if len(st.held)+len(ex.req.Frame) > s.maxBuf {
			ss.resetStream(st, codec.Errorf(codec.ErrOverloaded, "metaproxy: too many bytes wait for stream %d to open", st.id))
			return
		}
		st.held = append(st.held, ex.req.Frame...)
		return
	}
	ss.clientStreamFrame(st, &ex.req)
}

// clientStreamFrame sends m, a frame of the open stream st, upstream; a
// reset from the client ends the stream; ss.mu is held.
func (ss *Session) clientStreamFrame(st *stream, m *codec.Message) {
	flush, err := st.up.sendStream(m, st.upID)
	if err != nil {
		ss.resetStream(st, asCodecError(err))
		return
	}
	if flush {
		ss.dirty = append(ss.dirty, st.up)
	}
	if m.Kind == codec.KindStreamClose && m.Status != codec.StatusOK {
		ss.endStream(st, false) // the client's reset went upstream
	}
}

// resetStream ends st on both sides with e: the client gets the codec's
// native reset, the server a reset too; ss.mu is held.
func (ss *Session) resetStream(st *stream, e *codec.Error) {
	s := ss.srv
	s.stats.StreamReset.Add(1)
	ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &codec.Message{Kind: codec.KindStreamData, ID: st.id, StreamID: st.id}, e)
	ss.endStream(st, true)
}

// endStream forgets st; with reset, its upstream is sent a reset first
// (an exclusive connection is closed instead: its state is unknown);
// ss.mu is held.
func (ss *Session) endStream(st *stream, reset bool) {
	delete(ss.streams, st.id)
	ss.srv.stats.StreamActive.Add(-1)
	st.held = nil
	if u := st.up; u != nil {
		if u.dropStream(st, reset) {
			ss.dirty = append(ss.dirty, u)
		}
		if reset && !u.pool.mux {
			ss.toClose = append(ss.toClose, u)
		}
	}
	ss.closeIfDone()
}

// closeStreams ends every stream of a closing session, resetting them
// upstream; ss.mu is held.
func (ss *Session) closeStreams() {
	for _, st := range ss.streams {
		ss.endStream(st, true)
	}
}

// fromUpstream writes frame f of stream st, which its upstream sent, for
// the client with the client's stream id; the server's CLOSE (end) ends
// the stream. It reports whether the session must be flushed.
func (ss *Session) fromUpstream(st *stream, m *codec.Message, end bool) (mustFlush bool) {
	s := ss.srv
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed || ss.streams[st.id] != st {
		return false
	}
	if !st.open {
		s.stats.StreamFrameUnknown.Add(1) // the INIT's answer comes first
		return false
	}
	if ss.idle != nil {
		ss.lastData = s.now()
	}
	n := len(ss.wbuf)
	ss.edit = codec.Edit{SetID: true, ID: st.id}
	out, err := s.encode(ss.codec, ss.wbuf, m, &ss.edit)
	if err != nil {
		ss.wbuf = ss.wbuf[:n]
		ss.resetStream(st, codec.Errorf(codec.ErrBadResponse, "metaproxy: cannot relay a frame of stream %d: %v", st.id, err))
	} else {
		ss.wbuf = out
		if end {
			ss.endStream(st, false)
		}
	}
	if ss.queued {
		return false
	}
	ss.queued = true
	return true
}

// upstreamLost resets st, an open stream of the failed connection u, for
// its client with e. A stream still opening is its INIT's to settle.
func (ss *Session) upstreamLost(st *stream, u *upstream, e *codec.Error) {
	ss.mu.Lock()
	defer ss.unlock()
	if ss.closed || ss.streams[st.id] != st || st.up != u || !st.open {
		return
	}
	ss.resetStream(st, e)
}

// bindStream records that the INIT of st is queued on u as upID; u.mu is
// held, and the session's lock.
func (u *upstream) bindStream(st *stream, upID uint64) {
	if u.streams == nil {
		u.streams = map[uint64]*stream{}
	}
	u.streams[upID] = st
	st.up, st.upID = u, upID
}

// unbind takes st off the connection its INIT went to before the INIT is
// tried elsewhere; the session's lock is held.
func (st *stream) unbind() {
	if st.up != nil {
		st.up.dropStream(st, false)
		st.up = nil
	}
}

// sendStream queues stream frame m for u as stream id. It reports whether
// the caller must flush u.
func (u *upstream) sendStream(m *codec.Message, id uint64) (mustFlush bool, err error) {
	s := u.srv
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == upClosed || u.streams[id] == nil {
		return false, codec.Errorf(codec.ErrUnavailable, "metaproxy: the upstream connection of stream %d closed", id)
	}
	if len(u.wbuf) > s.maxBuf {
		s.stats.BufferOverflow.Add(1)
		return false, codec.Errorf(codec.ErrOverloaded, "metaproxy: too many bytes waiting for upstream %s", u.pool.addr)
	}
	u.edit = codec.Edit{SetID: true, ID: id}
	out, err := s.encode(u.codec, u.wbuf, m, &u.edit)
	if err != nil {
		return false, codec.Errorf(codec.ErrInternal, "metaproxy: cannot encode a stream frame: %v", err)
	}
	u.wbuf = out
	if m.Kind == codec.KindStreamClose && m.Status != codec.StatusOK {
		delete(u.streams, id)
	}
	return u.startBatch(), nil
}

// dropStream forgets st; with reset it queues the codec's reset of the
// stream for the server and reports whether the caller must flush u.
func (u *upstream) dropStream(st *stream, reset bool) (mustFlush bool) {
	s := u.srv
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.streams[st.upID] != st {
		return false
	}
	delete(u.streams, st.upID)
	if !reset || u.state != upReady {
		return false
	}
	u.wbuf = s.errorReply(u.codec, u.wbuf, &codec.Message{Kind: codec.KindStreamData, ID: st.upID, StreamID: st.upID},
		codec.Errorf(codec.ErrUnavailable, "metaproxy: the client of the stream is gone"))
	return u.startBatch()
}

// streamIn is a stream frame an upstream read, waiting to be handed to
// its stream's session once the upstream's lock is released.
type streamIn struct {
	st       *stream
	kind     codec.Kind
	off, end int // the frame in upstream.sbuf
	last     bool
}

// streamFrame takes a DATA, FEEDBACK or CLOSE frame, in u.spare, of one of
// u's streams; u.mu is held. The server's CLOSE ends the stream here.
func (u *upstream) streamFrame() {
	id := u.spare.StreamID
	st := u.streams[id]
	if st == nil {
		u.srv.stats.StreamFrameUnknown.Add(1)
		return
	}
	last := u.spare.Kind == codec.KindStreamClose
	if last {
		delete(u.streams, id)
	}
	off := len(u.sbuf)
	u.sbuf = append(u.sbuf, u.spare.Frame...)
	u.sin = append(u.sin, streamIn{st: st, kind: u.spare.Kind, off: off, end: len(u.sbuf), last: last})
}

// deliverStreams hands the stream frames u read to their sessions and
// appends the sessions to flush to owners. It runs without u.mu (OnData
// only).
func (u *upstream) deliverStreams(owners []owner) []owner {
	if len(u.sin) == 0 {
		return owners
	}
	m := &u.smsg
	for i := range u.sin {
		in := &u.sin[i]
		m.Reset()
		m.Kind, m.ID, m.StreamID = in.kind, in.st.upID, in.st.upID
		m.Frame = u.sbuf[in.off:in.end]
		if ss := in.st.ss; ss.fromUpstream(in.st, m, in.last) {
			owners = append(owners, ss)
		}
		in.st = nil
	}
	u.sin = u.sin[:0]
	if cap(u.sbuf) > 256<<10 {
		u.sbuf = nil
	} else {
		u.sbuf = u.sbuf[:0]
	}
	return owners
}

// loseStreams resets, for their clients, the open streams of u, which
// failed with e.
func (u *upstream) loseStreams(streams map[uint64]*stream, e *codec.Error) {
	for _, st := range streams {
		st.ss.upstreamLost(st, u, e)
	}
}
