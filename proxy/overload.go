package proxy

import (
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// Overload bounds: requests in flight per connection and per listener, and
// the partial frames held across the listener's connections. Beyond them
// the caller gets the protocol's overloaded error, at once.

// Admit reports whether the listener takes one more downstream connection;
// the host closes the connection at once when it does not. Hosts call it
// before NewSession.
func (s *Server) Admit() bool {
	if s.cfg.MaxConnections <= 0 || s.stats.CxActive.Load() < int64(s.cfg.MaxConnections) {
		return true
	}
	s.stats.DownstreamCxOverflow.Add(1)
	return false
}

// overloaded answers ex with a native overloaded error if it would exceed
// a bound on requests in flight, and reports whether it did; ss.mu is held.
func (ss *Session) overloaded(ex *exchange) bool {
	s := ss.srv
	perConn, total := s.cfg.MaxActiveRequestsPerConnection, s.cfg.MaxActiveRequests
	var why string
	switch {
	case perConn > 0 && ss.active >= perConn:
		why = "metaproxy: too many requests in flight on this connection"
	case total > 0 && s.stats.RequestActive.Load() >= int64(total):
		why = "metaproxy: too many requests in flight on this listener"
	default:
		return false
	}
	s.stats.RequestOverflow.Add(1)
	if twoWay(ex.req.Kind) {
		s.stats.LocalResponseBusinessException.Add(1)
		ss.wbuf = s.errorReply(ss.codec, ss.wbuf, &ex.req, &codec.Error{Type: codec.ErrOverloaded, Message: why})
	}
	return true
}

// holdPartial accounts for keeping the partial frame data in the listener's
// buffered bytes. Over MaxBufferedBytesTotal the connection gets a native
// overloaded error and is closed, and holdPartial reports false; ss.mu is
// held.
func (ss *Session) holdPartial(data []byte) bool {
	s := ss.srv
	n := len(data)
	delta := n - ss.held
	if delta == 0 {
		return true
	}
	total := s.buffered.Add(int64(delta))
	ss.held = n
	if delta < 0 || s.cfg.MaxBufferedBytesTotal <= 0 || total <= s.cfg.MaxBufferedBytesTotal {
		return true
	}
	s.stats.BufferOverflow.Add(1)
	s.log.Warn("closing connection: the listener's buffered bytes are over the limit", "peer", ss.remote, "limit", s.cfg.MaxBufferedBytesTotal)
	ss.rejectAs(codec.ErrOverloaded, data, "metaproxy: proxy buffers full")
	return false
}

// releaseHeld gives the session's partial frame back to the listener's
// buffered bytes; ss.mu is held.
func (ss *Session) releaseHeld() {
	if ss.held != 0 {
		ss.srv.buffered.Add(-int64(ss.held))
		ss.held = 0
	}
}

// timePartial starts or stops the clock of FrameReceiveTimeout after a
// read: partial says a partial frame is held, progress that a frame
// completed in this read (a partial frame held now is a new one); ss.mu is
// held.
func (ss *Session) timePartial(partial, progress bool) {
	d := ss.srv.cfg.FrameReceiveTimeout
	switch {
	case d <= 0:
	case !partial:
		ss.partialSince = time.Time{}
	case progress || ss.partialSince.IsZero():
		ss.partialSince = ss.srv.now()
		if !ss.frameArmed {
			ss.frameArmed = true
			if ss.frameTimer == nil {
				ss.frameTimer = time.AfterFunc(d, ss.checkFrame)
			} else {
				ss.frameTimer.Reset(d)
			}
		}
	}
}

// checkFrame closes the connection if its partial frame is older than
// FrameReceiveTimeout, with a native timeout error where the codec can
// answer a partial frame; otherwise it waits for the rest of the bound.
func (ss *Session) checkFrame() {
	ss.mu.Lock()
	defer ss.unlock()
	ss.frameArmed = false
	if ss.closed || ss.partialSince.IsZero() {
		return
	}
	d := ss.srv.cfg.FrameReceiveTimeout
	if left := d - ss.srv.now().Sub(ss.partialSince); left > 0 {
		ss.frameArmed = true
		ss.frameTimer.Reset(left)
		return
	}
	ss.srv.stats.FrameReceiveTimeout.Add(1)
	ss.srv.log.Warn("closing connection: frame not received in time", "peer", ss.remote, "timeout", d)
	ss.rejectAs(codec.ErrTimeout, ss.buf, "metaproxy: request not received within "+d.String())
}
