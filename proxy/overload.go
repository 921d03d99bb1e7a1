package proxy

import "github.com/metaproxy/metaproxy/codec"

// Overload bounds: requests in flight per connection and per listener, and
// the partial frames held across the listener's connections. Beyond them
// the caller gets the protocol's overloaded error, at once.

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
	if ex.req.Kind == codec.KindRequest {
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
