package proxy

import "time"

// The end of a session: exchanges finish, a closing client cancels what it
// still waits for, idle connections are reaped.

// finish ends ex, whoever held it: its outcome is recorded, the completion
// hooks run and ex is released; ss.mu is held. The last answer to a client
// that half-closed, or on a draining connection, closes it.
func (ss *Session) finish(ex *exchange) {
	ss.unlink(ex)
	ex.endTry()
	if ex.seq != 0 {
		ss.done(ex.seq)
	}
	if ss.bound != nil {
		defer ss.boundFinished(ex)
	}
	if !ex.expired { // an expired exchange left the counts when it expired
		ss.active--
		ss.srv.stats.RequestActive.Add(-1)
	}
	if chain := ex.snap.chain; chain.Completes() {
		o := &ex.x.Outcome
		o.End, o.Tries = ss.srv.now(), ex.tries
		o.ClientGone = ss.closed && !o.Local && ex.x.Response == nil && !o.Oneway
		chain.Complete(&ex.x)
	}
	if ex.stream != nil {
		ss.initEnded(ex)
	}
	ex.release()
	ss.closeIfDone()
}

// closeIfDone closes a connection that half-closed or drains once it has no
// request in flight; ss.mu is held.
func (ss *Session) closeIfDone() {
	if (ss.readDone || ss.draining) && ss.active == 0 && len(ss.streams) == 0 {
		ss.closeLocked(true)
	}
}

// Drain closes the connection as soon as it has no request in flight: at
// once if it is idle, else after the answer that leaves it idle. Hosts
// call it on every session when the listener shuts down, then wait for
// Server.Drain.
func (ss *Session) Drain() {
	ss.mu.Lock()
	defer ss.unlock()
	ss.draining = true
	if ss.active == 0 && len(ss.streams) == 0 {
		ss.closeLocked(true)
	}
}

// OnReadClosed tells the session that the client half-closed the
// connection (sent FIN): it sends no more requests but may still read.
// As Envoy does with half-close enabled, the connection stays open for
// writing until every request in flight is answered, then closes. A partial
// frame left over can never complete and is dropped.
func (ss *Session) OnReadClosed() {
	ss.mu.Lock()
	defer ss.unlock()
	if ss.closed || ss.readDone {
		return
	}
	ss.readDone = true
	ss.buf, ss.partialSince = nil, time.Time{}
	ss.releaseHeld()
	if ss.active == 0 && len(ss.streams) == 0 {
		ss.closeLocked(true)
	}
}

// link records ex, just handed to an upstream, among the session's
// exchanges in flight; ss.mu is held.
func (ss *Session) link(ex *exchange) {
	ex.next, ex.prev = ss.inflight, nil
	if ss.inflight != nil {
		ss.inflight.prev = ex
	}
	ss.inflight = ex
}

// linked reports whether ex is in the session's list; ss.mu is held.
func (ss *Session) linked(ex *exchange) bool { return ex.prev != nil || ss.inflight == ex }

func (ss *Session) unlink(ex *exchange) {
	if !ss.linked(ex) {
		return
	}
	if ex.prev != nil {
		ex.prev.next = ex.next
	} else {
		ss.inflight = ex.next
	}
	if ex.next != nil {
		ex.next.prev = ex.prev
	}
	ex.prev, ex.next = nil, nil
}

// supersede marks the calls in flight unawaited when the client is serial
// (codec.Serial) and sends another call: it is not waiting for them, so no
// local reply may be sent for them; ss.mu is held.
func (ss *Session) supersede() {
	if ss.inflight == nil {
		return
	}
	if ss.serial == nil || !ss.serial.SerialClients() {
		return
	}
	for ex := ss.inflight; ex != nil; ex = ex.next {
		ex.unawaited = true
	}
}

// cancelLocked takes back every exchange an upstream still holds for this
// closed session and ends it: nobody waits for those answers. A
// multiplexed connection drops the late answer (response_unknown_id); an
// exclusive one would take it for its next request's, so it is closed once
// ss.mu is released. An exchange already handed on for delivery is ended
// by its deliverer, which waits for ss.mu; ss.mu is held.
func (ss *Session) cancelLocked() {
	for ex := ss.inflight; ex != nil; {
		next := ex.next
		if u := ex.try.up; u != nil && u.cancel(ex) {
			ss.srv.stats.RequestCancelled.Add(1)
			ex.try.host.End()
			if !u.pool.mux {
				ss.toClose = append(ss.toClose, u)
			}
			ss.finish(ex)
		} else if p := ex.try.waiting; p != nil && p.cancelWait(ex) {
			ss.srv.stats.RequestCancelled.Add(1)
			ex.try.waiting = nil
			ss.finish(ex)
		}
		ex = next
	}
}

// OnClose tells the session that the downstream connection closed.
func (ss *Session) OnClose() {
	ss.mu.Lock()
	defer ss.unlock()
	if ss.closed {
		return
	}
	if ss.active > 0 {
		ss.srv.stats.CxDestroyRemoteWithActiveRq.Add(1)
	}
	ss.markClosed()
}

// Close closes the downstream connection.
func (ss *Session) Close() {
	ss.mu.Lock()
	defer ss.unlock()
	ss.closeLocked(true)
}

func (ss *Session) closeLocked(flush bool) {
	if ss.closed {
		return
	}
	if ss.active > 0 {
		ss.srv.stats.CxDestroyLocalWithActiveRq.Add(1)
	}
	if flush && len(ss.wbuf) > 0 {
		_ = ss.conn.Write(ss.wbuf)
	}
	ss.markClosed()
	ss.conn.Close(flush)
}

// closeBound closes a server-first connection's upstream once the client
// connection is closed; ss.mu is held.
func (ss *Session) closeBound() {
	if ss.bound != nil {
		go ss.bound.close() // the host may report the close at once: not under ss.mu
	}
}

func (ss *Session) markClosed() {
	ss.closed = true
	ss.buf, ss.wbuf = nil, nil
	ss.releaseHeld()
	ss.srv.stats.CxActive.Add(-1)
	if ss.idle != nil {
		ss.idle.Stop()
	}
	if ss.frameTimer != nil {
		ss.frameTimer.Stop()
	}
	ss.cancelLocked()
	ss.closeStreams()
	ss.closeBound()
}

func (ss *Session) checkIdle() {
	ss.mu.Lock()
	defer ss.unlock()
	if ss.closed {
		return
	}
	idle := ss.srv.now().Sub(ss.lastData)
	if ss.active == 0 && idle >= ss.srv.cfg.IdleTimeout {
		ss.srv.stats.IdleTimeout.Add(1)
		ss.srv.log.Debug("closing idle connection", "peer", ss.remote)
		ss.closeLocked(true)
		return
	}
	next := ss.srv.cfg.IdleTimeout - idle
	if ss.active > 0 || next <= 0 {
		next = ss.srv.cfg.IdleTimeout
	}
	ss.idle.Reset(next)
}
