//go:build cgo

package main

import (
	"runtime/debug"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"

	"github.com/metaproxy/metaproxy/proxy"
)

// CreateFilter makes the filter of a new downstream connection. It runs on
// the connection's worker for every connection.
func (lc *listenerConfig) CreateFilter(cb api.ConnectionCallback) api.DownstreamFilter {
	return &downstream{lc: lc, conn: newConn(cb)}
}

// downstream is the filter of one client connection: it feeds the bytes
// Envoy reads to the engine's Session. Envoy calls its methods one at a
// time on the connection's worker.
type downstream struct {
	lc   *listenerConfig
	conn *conn
	sess *proxy.Session // nil before the session starts and after close
}

// OnNewConnection starts the session, or refuses the connection when the
// listener's config is bad.
func (d *downstream) OnNewConnection() (st api.FilterStatus) {
	st = api.NetworkFilterStopIteration
	defer d.contain("new connection")
	// On a downstream callback the SDK's UpstreamRemoteAddress returns the
	// client's address.
	remote, _ := d.conn.cb.StreamInfo().UpstreamRemoteAddress()
	if d.lc.err != nil {
		logger.Error("metaprotocol: refusing connection: the listener's plugin_config is invalid", "peer", remote, "error", d.lc.err)
		d.conn.Close(false)
		return st
	}
	lc := registry.open(d.lc)
	if lc == nil {
		logger.Error("metaprotocol: refusing connection: its listener config was released", "peer", remote)
		d.conn.Close(false)
		return st
	}
	d.lc = lc
	if !lc.srv.Admit() {
		registry.done(lc)
		d.conn.Close(false) // over max_connections
		return st
	}
	d.conn.onWorker()
	d.sess = lc.srv.NewSession(d.conn, remote)
	return api.NetworkFilterContinue
}

// OnData hands bytes to the session. Envoy drains its buffer afterwards
// whatever the status; the session keeps partial frames itself.
func (d *downstream) OnData(b []byte, _ bool) (st api.FilterStatus) {
	st = api.NetworkFilterStopIteration
	defer d.contain("data")
	keepTick(d.conn.worker)
	if d.sess != nil {
		d.sess.OnData(b)
	}
	return st
}

// OnEvent ends the session when the connection closes and drops every
// reference to Envoy's side.
func (d *downstream) OnEvent(e api.ConnectionEvent) {
	defer d.contain("event")
	if e != api.LocalClose && e != api.RemoteClose {
		return
	}
	d.conn.detach()
	if s := d.sess; s != nil {
		d.sess = nil
		s.OnClose()
		registry.done(d.lc)
	}
}

// OnWrite lets every write through, the plugin's own included; returning
// StopIteration would make Envoy drop the bytes.
func (d *downstream) OnWrite([]byte, bool) api.FilterStatus { return api.NetworkFilterContinue }

// contain stops a panic from unwinding into Envoy, which would kill the
// process: the connection is closed instead. Deferred by every entry point.
func (d *downstream) contain(where string) {
	if p := recover(); p != nil {
		logger.Error("metaprotocol: panic contained, closing the connection", "where", "downstream "+where, "panic", p, "stack", string(debug.Stack()))
		d.conn.Close(false)
	}
}
