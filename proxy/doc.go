// Package proxy is the connection manager: the host-agnostic engine that
// turns bytes from clients into routed, forwarded requests and responses.
//
//	host ──OnData──▶ Session ──Split/Decode──▶ exchange ──filters──▶ router
//	     ──▶ upstream pool (multiplexed or one request per connection)
//	     ──▶ response decoded, id restored, response filters ──▶ host Write
//
// The engine has no sockets and no cgo: the standalone proxy and the Envoy
// plugin each implement transport.Conn and transport.Dialer (package transport) and call Session.OnData
// and Session.OnClose. A Session never blocks its caller: upstream writes
// and downstream replies go through transport.Conn.Write, which hosts implement
// without blocking.
//
// Locking: a Session's mutex guards its decoder and exchanges; an upstream
// connection's mutex guards its pending map. Requests take the session lock
// then the upstream lock; responses are collected under the upstream lock
// and delivered after it is released, so the two never wait on each other
// in opposite orders.
package proxy
