// Package filter defines the L7 filter chain that runs on every message.
//
// Filters are configured as an ordered list (Aeraki's meta_protocol_filters).
// For each request the proxy calls OnRequest of every filter in order, then
// the router; for each response (the upstream's, or a local error reply) it
// calls OnResponse of the filters that implement ResponseFilter, in reverse
// order; when the exchange ends, on every path (response, local reply,
// oneway, client gone, timeout), it calls OnComplete of the filters that
// implement Completer, once. A filter's OnRequest returns:
//
//   - Continue: go on with the next filter;
//   - Pause: stop here for now; the filter (or a goroutine it started) calls
//     Exchange.Resume exactly once later, from any goroutine, even from
//     inside OnRequest, to go on;
//   - Stop: the filter answered (Exchange.Reply) and the chain ends.
//
// Filters are built once per configuration and shared by every connection:
// they must be safe for concurrent use and keep per-request state in the
// Exchange (its Slots) or on the stack. With no filters configured the
// chain is the router alone.
package filter

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
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

// ResponseFilter is implemented by filters that also see responses,
// including local error replies (x.LocalReply set, x.Response nil). It may
// add response headers or read the response; it cannot pause.
type ResponseFilter interface {
	OnResponse(x *Exchange)
}

// Completer is implemented by filters that act once an exchange has ended
// (stats, access logs, spans): OnComplete runs exactly once per exchange
// that reached the chain, whatever the ending; x.Outcome says how it ended.
type Completer interface {
	OnComplete(x *Exchange)
}

// Func adapts a function to Filter.
type Func func(x *Exchange) Status

// OnRequest calls f.
func (f Func) OnRequest(x *Exchange) Status { return f(x) }

// Exchange is one request and, later, its response as they pass through the
// chain. The proxy owns it: filters must not keep it after OnComplete (or,
// when they paused, after Resume).
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

	// Route is the route the router chose (its timeout, retry and hash
	// policies); nil before routing or when no route matched.
	Route *router.Route
	// Cluster is the cluster the request was sent to.
	Cluster string
	// Upstream is the address of the endpoint that served the request (the
	// last one tried).
	Upstream string
	// Downstream is the client's address.
	Downstream string
	// Start is when the request was decoded.
	Start time.Time
	// Outcome is filled in as the exchange ends, before OnComplete (and
	// only when some filter implements Completer).
	Outcome Outcome

	slots   [MaxSlots]any
	resumer Resumer
	next    int          // the next filter to run
	state   atomic.Int32 // see Chain.Run
}

// Outcome says how an exchange ended.
type Outcome struct {
	// End is when the client was answered (or the exchange abandoned).
	End time.Time
	// Status classifies the upstream's response; meaningless when Local.
	Status codec.Status
	// Local is set when the proxy or a filter answered with a local error
	// (LocalReply, or a timeout while a filter held the request); ErrorType
	// is then its type. Oneway and ClientGone exchanges sent no answer.
	Local     bool
	ErrorType codec.ErrorType
	// Oneway: the request expected no answer. ClientGone: the client closed
	// its connection before it was answered.
	Oneway, ClientGone bool
	// Tries is the number of times the request was sent upstream (0 for a
	// local reply before routing, more than 1 after retries).
	Tries int
	// BytesIn is the request's size, BytesOut the size of the answer sent
	// to the client.
	BytesIn, BytesOut int
	// Mirrored is the number of copies of the request sent to mirror
	// clusters.
	Mirrored int
	// Flags are response flags filters set while the exchange ran (RL,
	// FI, DI, UAEX...); ResponseFlags adds those of the local error.
	Flags Flag
}

// Resumer is the proxy's side of Resume: it continues a paused exchange.
type Resumer interface {
	Resume(x *Exchange)
}

// Reply ends the exchange with a protocol-native error reply and returns
// Stop, so a filter can write `return x.Reply(...)`.
func (x *Exchange) Reply(t codec.ErrorType, format string, args ...any) Status {
	x.LocalReply = &codec.Error{Type: t, Message: fmt.Sprintf(format, args...)}
	return Stop
}

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
	x.Request, x.Response, x.LocalReply = nil, nil, nil
	x.RequestHeaders, x.ResponseHeaders = rh, sh
	x.Route, x.Cluster, x.Upstream, x.Downstream = nil, "", "", ""
	x.Start, x.Outcome = time.Time{}, Outcome{}
	clear(x.slots[:])
	x.resumer, x.next = nil, 0
	x.state.Store(stateIdle)
}
