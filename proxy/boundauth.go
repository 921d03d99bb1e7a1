package proxy

import "github.com/metaproxy/metaproxy/codec"

// Late binding (codec.Greeter): when routes match on what a client says in
// its handshake (MySQL's user and database), the proxy greets the client
// itself, routes on the handshake, dials the chosen server, and carries the
// client's authentication over to it: the client answers the server's own
// challenge, so the server checks the real password. Then bytes are relayed
// as in any bound connection.

// bindLate routes the client's handshake ex and dials the server it names;
// ss.mu is held.
func (ss *Session) bindLate(ex *exchange) {
	b := ss.bound
	if err := b.greeter.Handshake(ex.req.Frame); err != nil {
		ss.localReply(ex, codec.Errorf(codec.ErrBadRequest, "metaproxy: %v", err))
		ss.closeLocked(true)
		return
	}
	if !ss.bind(ex.snap, &ex.req.Meta) {
		ss.finish(ex)
		return
	}
	b.auth = authServerGreets
	ex.x.Upstream = b.host.Addr
	ss.srv.stats.Request.Add(1)
	ss.finish(ex)
}

// serverAuth takes server bytes while the authentication is under way;
// ss.mu is held.
func (ss *Session) serverAuth(p []byte) {
	b := ss.bound
	b.sbuf = append(b.sbuf, p...)
	for b.auth != authNone && !ss.closed {
		n, err := ss.srv.split(b.up, b.sbuf)
		if err != nil {
			ss.authFailed(err)
			return
		}
		if n == 0 {
			return
		}
		frame := b.sbuf[:n]
		switch b.auth {
		case authServerGreets:
			ss.wbuf, err = b.greeter.ServerGreeting(ss.wbuf, frame)
			b.auth = authClientAnswer
		case authServerReply:
			var done bool
			ss.wbuf, done, err = b.greeter.ServerAuthReply(ss.wbuf, frame)
			if done {
				b.auth = authNone
			}
		default: // the server spoke out of turn
			err = errOutOfTurn
		}
		if err != nil {
			ss.authFailed(err)
			return
		}
		b.sbuf = b.sbuf[n:]
	}
	if len(b.sbuf) > 0 && !ss.closed { // relayed from now on
		ss.wbuf = append(ss.wbuf, b.sbuf...)
	}
	b.sbuf = nil
}

// clientAuth takes the client's answer to the server's challenge from the
// start of data and returns what follows it; ss.mu is held.
func (ss *Session) clientAuth(data []byte) []byte {
	b := ss.bound
	n, err := ss.srv.split(ss.codec, data)
	if err != nil {
		ss.authFailed(err)
		return nil
	}
	if n == 0 {
		b.held = append(b.held[:0], data...)
		return nil
	}
	out, err := b.greeter.ClientAuth(nil, data[:n])
	if err != nil {
		ss.authFailed(err)
		return nil
	}
	b.auth = authServerReply
	b.write(out)
	return data[n:]
}

// authFailed ends a connection whose authentication cannot be carried
// over; ss.mu is held.
func (ss *Session) authFailed(err error) {
	ss.srv.log.Warn("closing connection: authentication not carried over", "peer", ss.remote, "err", err)
	ss.closeLocked(true)
}

type authError string

func (e authError) Error() string { return string(e) }

const errOutOfTurn = authError("the server sent a packet before the client answered its challenge")
