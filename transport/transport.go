// Package transport is the contract between the engine and the host that
// runs it: the standalone proxy (Go's net package, or its own epoll
// reactor) or the Envoy golang network filter. The engine never touches a
// socket; it reads through the events a host reports and writes and dials
// through these interfaces. It is below every engine package, so health
// checks and control-plane clients dial through whichever host runs them.
package transport

import "errors"

// Every method below may be called from any goroutine; the engine
// serialises its own state.
//
// Hosts must never call back into the engine from inside Conn.Write,
// Conn.Close or Dialer.Dial: the engine may hold locks while it calls them.
// Report events (data, closure, connect outcome) from the host's own
// goroutine or event loop instead.

// Conn is a connection as the engine sees it: downstream (a client) or
// upstream (a server the engine dialled).
type Conn interface {
	// Write sends b. It must not keep b after it returns (copy or send it at
	// once); it never blocks on the peer for long. b is never empty. An error
	// means the connection is unusable; the host will report OnClose.
	Write(b []byte) error
	// Close closes the connection. With flush, bytes already written are sent
	// first. Close is idempotent. The host reports the closure to the
	// engine's handler (Session.OnClose, UpstreamHandler.OnClose) unless the
	// engine itself asked for it, in which case the report is optional and
	// harmless.
	Close(flush bool)
}

// Placed is implemented by a Conn whose host runs its events on one of
// several workers: Envoy's worker threads, the standalone's event loops.
// Worker names that worker (nonzero) and never changes. The engine sends a
// client's requests on an upstream connection of the client's own worker
// when one is open, so that the host need not hand the bytes to another
// thread and wake it (Envoy's own connection pools are per worker for that
// reason).
type Placed interface {
	Worker() int32
}

// WorkerOf returns c's worker, or 0 if its host does not say.
func WorkerOf(c Conn) int32 {
	if p, ok := c.(Placed); ok {
		return p.Worker()
	}
	return 0
}

// Dialer opens upstream connections.
type Dialer interface {
	// Dial starts connecting to addr, a literal "ip:port", and returns at
	// once. The outcome is reported to h: OnConnect or OnConnectFailure,
	// then OnData for every read and OnClose once.
	Dial(addr string, h UpstreamHandler)
}

// UpstreamHandler receives the events of one upstream connection. The host
// must deliver them in order for one connection and never concurrently.
type UpstreamHandler interface {
	OnConnect(c Conn)
	OnConnectFailure(err error)
	// OnData delivers bytes read; b is only valid during the call.
	OnData(b []byte)
	// OnClose reports that the connection is closed (remote or local).
	OnClose(err error)
}

// ErrSlowPeer is what a host's Conn.Write returns (wrapped) when the bytes
// waiting for a peer that does not read exceed the host's bound and the
// connection was closed for it. The engine counts such connections.
var ErrSlowPeer = errors.New("write buffer over the limit: peer too slow")

// ErrSelfConnect is what a host's Dialer reports (wrapped) when a connect
// to a loopback port nothing listens on landed on its own source port: the
// socket is connected to itself and holds the port the real upstream needs.
var ErrSelfConnect = errors.New("connected to itself (source and destination are the same)")
