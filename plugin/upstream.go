//go:build cgo

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime/debug"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"github.com/metaproxy/metaproxy/plugin/shim"

	"github.com/metaproxy/metaproxy/transport"
)

var errRemoteClose = errors.New("closed by the peer")

// dialer is the plugin's transport.Dialer: it connects through Envoy's
// plainText ORIGINAL_DST cluster, whose connect timeout, circuit breakers
// and socket options apply to every upstream connection.
type dialer struct{}

// Dial starts connecting to addr. Envoy places the connection on one of its
// workers round-robin, so h's events run on that worker, concurrently with
// the downstream connection that asked for it.
func (dialer) Dial(addr string, h transport.UpstreamHandler) {
	if err := literal(addr); err != nil {
		// Anything else makes Envoy throw on this goroutine's thread,
		// which ends the process. The failure is reported asynchronously,
		// as Envoy would.
		go h.OnConnectFailure(err)
		return
	}
	shim.CreateUpstreamConn(addr, &upstream{h: h, addr: addr})
}

// literal checks that addr is an "ip:port" Envoy can parse.
func literal(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("metaprotocol: dial %q: want a literal ip:port: %w", addr, err)
	}
	if ap.Addr().Zone() != "" {
		return fmt.Errorf("metaprotocol: dial %q: IPv6 zones are not supported by Envoy", addr)
	}
	return nil
}

// upstream is the SDK's view of one upstream connection, relaying its
// events to the engine. Envoy calls it on the connection's worker, one
// event at a time.
type upstream struct {
	h    transport.UpstreamHandler
	addr string
	conn *conn
}

// OnPoolReady reports the connection established.
func (u *upstream) OnPoolReady(cb api.ConnectionCallback) {
	defer u.contain("ready")
	u.conn = newConn(cb)
	u.conn.onWorker()
	u.h.OnConnect(u.conn)
}

// OnPoolFailure reports that no connection could be made.
func (u *upstream) OnPoolFailure(reason api.PoolFailureReason, transport string) {
	defer u.contain("failure")
	err := fmt.Errorf("metaprotocol: connect %s: %s", u.addr, reason)
	if transport != "" {
		err = fmt.Errorf("%w: %s", err, transport)
	}
	h := u.h
	u.h = nil
	h.OnConnectFailure(err)
}

// OnData relays bytes read from the upstream.
func (u *upstream) OnData(b []byte, _ bool) {
	defer u.contain("data")
	if u.conn != nil {
		keepTick(u.conn.worker)
	}
	if len(b) > 0 && u.h != nil {
		u.h.OnData(b)
	}
}

// OnEvent reports the close and drops every reference to Envoy's side.
func (u *upstream) OnEvent(e api.ConnectionEvent) {
	defer u.contain("event")
	if e != api.LocalClose && e != api.RemoteClose {
		return
	}
	if u.conn != nil {
		u.conn.detach()
	}
	h := u.h
	u.h = nil
	if h == nil {
		return
	}
	var err error
	if e == api.RemoteClose {
		err = errRemoteClose
	}
	h.OnClose(err)
}

// contain stops a panic from unwinding into Envoy; the upstream connection
// is closed instead.
func (u *upstream) contain(where string) {
	if p := recover(); p != nil {
		logger.Error("metaprotocol: panic contained, closing the upstream connection", "where", "upstream "+where, "upstream", u.addr, "panic", p, "stack", string(debug.Stack()))
		if u.conn != nil {
			u.conn.Close(false)
		}
	}
}
