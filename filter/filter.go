// Package filter defines the L7 filter chain that runs on every message.
//
// Filters are configured as an ordered list (Aeraki's meta_protocol_filters).
// For each request the proxy calls OnRequest of every filter in order, then
// the router; for each response it calls OnResponse of the filters that
// implement ResponseFilter, in reverse order. A filter returns:
//
//   - Continue: go on with the next filter;
//   - Pause: stop here for now; the filter (or a goroutine it started) calls
//     Exchange.Resume exactly once later, from any goroutine, to go on;
//   - Stop: the filter answered (Exchange.Reply) and the chain ends.
//
// Filters are built once per configuration and shared by every connection:
// they must be safe for concurrent use and keep per-request state in the
// Exchange or on the stack. With no filters configured the chain is the
// router alone.
package filter

import (
	"fmt"
	"strings"
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// Status is what a filter tells the chain.
type Status uint8

// Filter results.
const (
	Continue Status = iota
	Pause
	Stop
)

// Filter runs on the request path.
type Filter interface {
	OnRequest(x *Exchange) Status
}

// ResponseFilter is implemented by filters that also see responses
// (including local error replies). Pause is not allowed on the response path:
// it is treated as Continue.
type ResponseFilter interface {
	OnResponse(x *Exchange) Status
}

// Func adapts a function to Filter.
type Func func(x *Exchange) Status

// OnRequest calls f.
func (f Func) OnRequest(x *Exchange) Status { return f(x) }

// Resumer is implemented by the proxy: it continues a paused exchange.
type Resumer interface {
	Resume(x *Exchange)
}

// Exchange is one request and, later, its response as they pass through the
// chain. The proxy owns it: filters must not keep it after the exchange ends
// (after the response path, or after Resume when the filter paused).
type Exchange struct {
	// Request is the decoded request. Filters may add metadata to it (to
	// steer routing) but must not change its Frame.
	Request *codec.Message
	// Response is the decoded response on the response path; nil for local
	// replies and on the request path.
	Response *codec.Message
	// LocalReply is set when the proxy or a filter answered in place of the
	// upstream.
	LocalReply *codec.Error

	// RequestHeaders are written into the request by the codec before it is
	// forwarded (Aeraki's request mutation).
	RequestHeaders []codec.KV
	// ResponseHeaders are written into the response before it is returned.
	ResponseHeaders []codec.KV

	// Route and Cluster are set by the router.
	Route   string
	Cluster string
	// Upstream is the address of the endpoint that served the request.
	Upstream string
	// Downstream is the client's address.
	Downstream string
	// Start is when the request was decoded.
	Start time.Time

	// Resumer is set by the proxy; filters call Resume instead.
	Resumer Resumer
	// Index is the position of the next filter to run; set by the proxy.
	Index int
}

// Reply ends the exchange with a protocol-native error reply and returns
// Stop, so a filter can write `return x.Reply(...)`.
func (x *Exchange) Reply(t codec.ErrorType, format string, args ...any) Status {
	x.LocalReply = &codec.Error{Type: t, Message: fmt.Sprintf(format, args...)}
	return Stop
}

// Resume continues a paused exchange with the next filter. Call it exactly
// once per Pause, from any goroutine. To reject instead, call Reply first and
// then Resume.
func (x *Exchange) Resume() { x.Resumer.Resume(x) }

// SetRequestHeader adds or replaces a header written into the forwarded request.
func (x *Exchange) SetRequestHeader(k, v string) { x.RequestHeaders = setKV(x.RequestHeaders, k, v) }

// SetResponseHeader adds or replaces a header written into the response.
func (x *Exchange) SetResponseHeader(k, v string) {
	x.ResponseHeaders = setKV(x.ResponseHeaders, k, v)
}

// setKV compares keys case-insensitively, as codec.Metadata does.
func setKV(kvs []codec.KV, k, v string) []codec.KV {
	for i := range kvs {
		if len(kvs[i].Key) == len(k) && (kvs[i].Key == k || strings.EqualFold(kvs[i].Key, k)) {
			kvs[i].Value = v
			return kvs
		}
	}
	return append(kvs, codec.KV{Key: k, Value: v})
}

// Reset clears x for reuse.
func (x *Exchange) Reset() {
	rh, sh := x.RequestHeaders[:0], x.ResponseHeaders[:0]
	*x = Exchange{RequestHeaders: rh, ResponseHeaders: sh}
}
