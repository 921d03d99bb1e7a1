package proxy

import (
	"net"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/transport"
)

// Server-first protocols (codec.Capabilities.ServerFirst: MySQL) bind a
// client connection to one upstream connection for its life: the upstream
// is chosen when the client connects, by the routes matched on connection
// metadata (KeySource: the client's IP address), and dialled at once; the
// server's greeting and every byte it sends are relayed as they come.
// Client packets are still decoded (user, database, statement kind...) and
// run through the filters, so RBAC can refuse a statement with the
// protocol's error packet; what the filters let through is forwarded
// unchanged, in order (while a filter holds a packet, later bytes wait).
// Nothing is multiplexed. Once the codec reports the connection opaque
// (a switch to TLS), bytes are relayed without decoding.

// KeySource is the connection metadata key holding the client's IP
// address, for routing server-first connections.
const KeySource = "source"

// opaquer is implemented by codecs that stop parsing at some point (MySQL
// after an SSLRequest).
type opaquer interface{ Opaque() bool }

// bound is a server-first session's upstream connection. It implements
// transport.UpstreamHandler.
type bound struct {
	ss   *Session
	host *cluster.Host
	cl   *cluster.Cluster

	ended sync.Once  // the host's request count
	mu    sync.Mutex // guards conn, early, gone; taken after ss.mu, never before
	conn  transport.Conn
	early []byte // client bytes sent before the upstream connected
	gone  bool

	// Guarded by ss.mu.
	waiting *exchange // an exchange a filter holds; later bytes wait in held
	held    []byte
	// late: the proxy greeted the client itself, to route on its handshake
	// (codec.Greeter); auth is where the authentication then stands.
	late    bool
	auth    authStep
	greeter codec.Greeter
	up      codec.Codec // splits the server's frames while auth is under way
	sbuf    []byte      // server bytes not yet split
}

// authStep is where the proxy's authentication of a late-bound client
// stands.
type authStep uint8

const (
	authNone         authStep = iota // relaying
	authServerGreets                 // the server was dialled: its greeting is awaited
	authClientAnswer                 // the client got the server's challenge
	authServerReply                  // the server got the client's answer
)

// routesNeedHandshake reports whether a route matches on more than the
// connection's source: on what the client says in its handshake.
func routesNeedHandshake(snap *snapshot) bool {
	for _, r := range snap.routes.Routes {
		for _, m := range r.Matchers {
			if m.Key != KeySource {
				return true
			}
		}
	}
	return false
}

// startBound picks the upstream of a new server-first connection and
// dials it; ss.mu is held.
func (ss *Session) startBound() {
	snap := ss.srv.snap.Load()
	if g, ok := ss.codec.(codec.Greeter); ok && routesNeedHandshake(snap) {
		ss.wbuf = g.Greet(ss.wbuf)
		ss.bound = &bound{ss: ss, late: true, greeter: g, up: codec.NewCodecFor(ss.srv.cfg.Codec, codec.SideUpstream)}
		return
	}
	var md codec.Metadata
	ss.bind(snap, &md)
}

// bind picks the upstream for the connection metadata md and dials it;
// ss.mu is held. It reports whether it dialled.
func (ss *Session) bind(snap *snapshot, md *codec.Metadata) bool {
	s := ss.srv
	if host, _, err := net.SplitHostPort(ss.remote); err == nil {
		md.Set(KeySource, host)
	}
	r := snap.routes.Match(md)
	if r == nil {
		ss.refuseBound(codec.Errorf(codec.ErrRouteNotFound, "metaproxy: no route for this %s connection", s.cfg.Protocol))
		return false
	}
	ref := snap.clusters[r.PickCluster()]
	if ref == nil {
		ss.refuseBound(codec.Errorf(codec.ErrClusterNotFound, "metaproxy: unknown cluster %q", r.PickCluster()))
		return false
	}
	lb := lbContext(r, md)
	h := ref.cl.Pick(s.now(), &lb)
	if h == nil {
		ss.refuseBound(codec.Errorf(codec.ErrNoHealthyUpstream, "metaproxy: no healthy upstream in cluster %q", ref.cl.Name()))
		return false
	}
	b := ss.bound
	if b == nil {
		b = &bound{ss: ss}
		ss.bound = b
	}
	b.host, b.cl = h, ref.cl
	h.Begin()
	s.stats.UpstreamCxTotal.Add(1)
	time.AfterFunc(ref.cl.ConnectTimeout(), b.connectTimeout)
	s.dialer.Dial(h.Addr, b)
	return true
}

// refuseBound answers a connection the proxy cannot bind with the
// protocol's error (before any greeting) and closes it; ss.mu is held.
func (ss *Session) refuseBound(e *codec.Error) {
	ss.srv.log.Warn("refusing a connection", "peer", ss.remote, "err", e.Message)
	if r, ok := ss.codec.(codec.ConnectionRefuser); ok {
		ss.wbuf = r.RefuseConnection(ss.wbuf, e)
	}
	ss.closeLocked(true)
}

// forwardBound sends the request ex, which the filters let through, on the
// bound connection and ends it; ss.mu is held.
func (ss *Session) forwardBound(ex *exchange) {
	if b := ss.bound; b.late && b.host == nil {
		ss.bindLate(ex)
		return
	}
	ex.x.Upstream = ss.bound.host.Addr
	ss.bound.write(ex.req.Frame)
	ss.srv.stats.Request.Add(1)
	ss.finish(ex)
}

// boundData takes client bytes of a server-first connection before they
// are framed: the answer to the server's challenge while the proxy carries
// the authentication over, bytes behind a packet a filter holds, and every
// byte once the connection is opaque. It returns the bytes left to frame;
// ss.mu is held.
func (ss *Session) boundData(p []byte) []byte {
	b := ss.bound
	switch {
	case b.auth == authClientAnswer:
		if len(b.held) > 0 { // part of the answer came before
			p = append(b.held, p...)
			b.held = nil
		}
		if p = ss.clientAuth(p); len(p) == 0 {
			return nil
		}
		return ss.boundData(p)
	case b.auth != authNone:
		return nil // the client speaks out of turn while the server answers
	case b.waiting != nil: // a filter holds a packet: later bytes wait
		b.held = append(b.held, p...)
		return nil
	case ss.opaque():
		b.write(p)
		return nil
	}
	return p
}

// boundFinished releases the bytes held behind ex; ss.mu is held.
func (ss *Session) boundFinished(ex *exchange) {
	b := ss.bound
	if b.waiting != ex {
		return
	}
	b.waiting = nil
	if data := b.held; len(data) > 0 && !ss.closed {
		b.held = nil
		ss.onData(data)
	}
}

// write sends client bytes upstream, or keeps them until it connects.
func (b *bound) write(p []byte) {
	if b.host == nil {
		return // late binding: nothing is chosen yet
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.gone:
	case b.conn == nil:
		b.early = append(b.early, p...)
	default:
		if err := b.conn.Write(p); err != nil {
			b.gone = true
			go b.OnClose(err)
		}
	}
}

// end ends the connection's count on its host (least request).
func (b *bound) end() {
	b.ended.Do(func() {
		if b.host != nil { // a late binding may have chosen none
			b.host.End()
		}
	})
}

// close closes the upstream connection (the client left).
func (b *bound) close() {
	b.mu.Lock()
	c, gone := b.conn, b.gone
	b.gone = true
	b.mu.Unlock()
	if c != nil && !gone {
		c.Close(true)
	}
	if c == nil {
		b.end() // never connected: no OnClose will come
	}
}

// OnConnect implements transport.UpstreamHandler.
func (b *bound) OnConnect(c transport.Conn) {
	b.mu.Lock()
	if b.gone {
		b.mu.Unlock()
		c.Close(false)
		return
	}
	b.conn = c
	early := b.early
	b.early = nil
	var err error
	if len(early) > 0 {
		err = c.Write(early)
	}
	b.mu.Unlock()
	b.host.ConnectSucceeded()
	if err != nil {
		b.OnClose(err)
	}
}

// OnConnectFailure implements transport.UpstreamHandler.
func (b *bound) OnConnectFailure(err error) {
	b.host.ConnectFailed(time.Now())
	b.fail(codec.Errorf(codec.ErrUnavailable, "metaproxy: cannot connect to %s: %v", b.host.Addr, err))
}

func (b *bound) connectTimeout() {
	b.mu.Lock()
	pending := b.conn == nil && !b.gone
	b.mu.Unlock()
	if pending {
		b.host.ConnectFailed(time.Now())
		b.fail(codec.Errorf(codec.ErrUnavailable, "metaproxy: connect to %s timed out", b.host.Addr))
	}
}

// fail ends a binding that never connected: the client gets the error.
func (b *bound) fail(e *codec.Error) {
	b.mu.Lock()
	if b.gone || b.conn != nil {
		b.mu.Unlock()
		return
	}
	b.gone = true
	b.mu.Unlock()
	b.end()
	ss := b.ss
	ss.mu.Lock()
	defer ss.unlock()
	if !ss.closed {
		ss.srv.stats.UpstreamCxConnectFail.Add(1)
		ss.refuseBound(e)
	}
}

// OnData implements transport.UpstreamHandler: server bytes go to the
// client as they are.
func (b *bound) OnData(p []byte) {
	ss := b.ss
	ss.mu.Lock()
	defer ss.unlock()
	defer ss.containLocked("bound upstream") // the codec's Greeter runs here
	switch {
	case ss.closed:
	case b.auth != authNone:
		ss.serverAuth(p)
	default:
		ss.wbuf = append(ss.wbuf, p...)
	}
}

// OnClose implements transport.UpstreamHandler: the server closed, so does
// the client's connection, after what the server sent.
func (b *bound) OnClose(error) {
	b.mu.Lock()
	b.gone = true
	b.mu.Unlock()
	b.end()
	ss := b.ss
	ss.mu.Lock()
	defer ss.unlock()
	ss.closeLocked(true)
}
