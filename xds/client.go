package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Client is the connection to one management server, shared by every
// subscriber of the process: one state-of-the-world stream (ADS), or one
// stream per resource type on the server's separate services (RDS, CDS,
// EDS). It subscribes to the names its watchers ask for, hands each
// response to them, ACKs it with the version they applied or NACKs it with
// their errors (keeping the last good version), and reconnects with
// jittered exponential back-off, re-subscribing with the versions it has.
type Client struct {
	name string // the management server's cluster
	ads  bool
	conn *grpc.ClientConn
	node *corev3.Node
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	types   map[string]*typeState // by type URL
	streams map[string]*stream    // by type URL; ADS: one stream under ""
	seq     uint64
}

// typeState is what the client subscribes to and has applied for one
// resource type.
type typeState struct {
	url      string
	named    map[string]map[uint64]*watch // watchers by resource name
	wildcard map[uint64]*watch            // watchers of every resource (CDS)
	version  string                       // last applied
	last     map[string]proto.Message     // the resources of the last applied response, by name
	seen     bool                         // a response was applied
}

type watch struct {
	id   uint64
	name string // "" for wildcard
	// apply gets the named resource (nil: the response did not carry it),
	// or, for a wildcard watch, every resource of the response.
	apply func(version string, res []proto.Message) error
}

// Reconnect back-off, as Envoy's gRPC mux: from 500 ms doubling to 30 s,
// each wait jittered.
const (
	backoffBase = 500 * time.Millisecond
	backoffMax  = 30 * time.Second
)

func newClient(name string, ads bool, conn *grpc.ClientConn, node *corev3.Node, log *slog.Logger) *Client {
	c := &Client{name: name, ads: ads, conn: conn, node: node, log: log.With("xds_server", name, "ads", ads),
		types: map[string]*typeState{}, streams: map[string]*stream{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Watch subscribes to the resource name of type typeURL ("" : every
// resource of the type, for CDS). apply is called, from the client's own
// goroutine, with each response's resources for the watch: for a named
// watch, a slice of its one resource, or none when the response is empty
// (a response carrying other names only is not the watch's); an error
// NACKs the response. A new watch of something already received gets
// it at once. cancel ends the watch (apply is not called after cancel
// returns, except for a call already under way).
func (c *Client) Watch(typeURL, name string, apply func(version string, res []proto.Message) error) (cancel func()) {
	c.mu.Lock()
	ts := c.types[typeURL]
	if ts == nil {
		ts = &typeState{url: typeURL, named: map[string]map[uint64]*watch{}, wildcard: map[uint64]*watch{}}
		c.types[typeURL] = ts
	}
	c.seq++
	w := &watch{id: c.seq, name: name, apply: apply}
	added := false
	if name == "" {
		ts.wildcard[w.id] = w
	} else {
		if ts.named[name] == nil {
			ts.named[name] = map[uint64]*watch{}
			added = true
		}
		ts.named[name][w.id] = w
	}
	var cached []proto.Message
	if ts.seen {
		cached = ts.forWatch(w)
	}
	seen := ts.seen && (name == "" || ts.last[name] != nil)
	version := ts.version
	st := c.streamFor(typeURL)
	c.mu.Unlock()
	if added {
		st.resubscribe(typeURL)
	}
	if seen {
		if err := apply(version, cached); err != nil {
			c.log.Warn("cached xDS resource rejected by a new watcher", "type", typeURL, "name", name, "err", err)
		}
	}
	return func() { c.unwatch(ts, w) }
}

func (c *Client) unwatch(ts *typeState, w *watch) {
	c.mu.Lock()
	removed := false
	if w.name == "" {
		delete(ts.wildcard, w.id)
	} else if ws := ts.named[w.name]; ws != nil {
		delete(ws, w.id)
		if len(ws) == 0 {
			delete(ts.named, w.name)
			delete(ts.last, w.name)
			removed = true
		}
	}
	st := c.streams[c.streamKey(ts.url)]
	c.mu.Unlock()
	if removed && st != nil {
		st.resubscribe(ts.url)
	}
}

// forWatch returns the resources of the last applied response for w;
// c.mu is held.
func (ts *typeState) forWatch(w *watch) []proto.Message {
	if w.name != "" {
		if r := ts.last[w.name]; r != nil {
			return []proto.Message{r}
		}
		return nil
	}
	out := make([]proto.Message, 0, len(ts.last))
	for _, n := range sortedNames(ts.last) {
		out = append(out, ts.last[n])
	}
	return out
}

// request is the DiscoveryRequest subscribing to ts as it stands, with
// the given nonce and error; c.mu is held.
func (c *Client) request(ts *typeState, nonce string, nack error) *discoveryv3.DiscoveryRequest {
	r := &discoveryv3.DiscoveryRequest{Node: c.node, TypeUrl: ts.url, VersionInfo: ts.version, ResponseNonce: nonce}
	if len(ts.wildcard) == 0 {
		r.ResourceNames = sortedKeys(ts.named)
	}
	if nack != nil {
		r.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: nack.Error()}
	}
	return r
}

// handle applies a response and returns the ACK or NACK to send.
func (c *Client) handle(resp *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	c.mu.Lock()
	ts := c.types[resp.GetTypeUrl()]
	if ts == nil {
		c.mu.Unlock()
		c.log.Warn("xDS response of a type never subscribed", "type", resp.GetTypeUrl())
		return nil
	}
	byName := make(map[string]proto.Message, len(resp.GetResources()))
	var errs []error
	for _, r := range resp.GetResources() {
		n, m, err := decode(ts.url, r)
		if err == nil && byName[n] != nil {
			err = fmt.Errorf("the response carries %s %q twice", ts.url, n)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		byName[n] = m
	}
	var ws []*watch
	for _, w := range ts.wildcard {
		ws = append(ws, w)
	}
	for _, m := range ts.named {
		for _, w := range m {
			ws = append(ws, w)
		}
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].id < ws[j].id })
	c.mu.Unlock()
	empty := len(resp.GetResources()) == 0
	if len(errs) == 0 {
		next := &typeState{last: byName}
		for _, w := range ws {
			// A named watch whose resource the response lacks keeps what it
			// has (RDS and EDS responses need not carry every name), unless
			// the response is empty.
			if w.name != "" && byName[w.name] == nil && !empty {
				continue
			}
			if err := w.apply(resp.GetVersionInfo(), next.forWatch(w)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(errs) > 0 {
		err := errors.Join(errs...)
		c.log.Warn("xDS update rejected (NACK)", "type", ts.url, "version", resp.GetVersionInfo(), "err", err)
		return c.request(ts, resp.GetNonce(), err)
	}
	if len(ts.wildcard) == 0 && ts.last != nil { // named: merge, keeping what the response lacks
		for n, r := range byName {
			ts.last[n] = r
		}
		byName = ts.last
	}
	ts.version, ts.last, ts.seen = resp.GetVersionInfo(), byName, true
	c.log.Debug("xDS update applied (ACK)", "type", ts.url, "version", ts.version, "resources", len(byName))
	return c.request(ts, resp.GetNonce(), nil)
}

// Close ends the client's streams.
func (c *Client) Close() {
	c.cancel()
	c.wg.Wait()
	c.conn.Close()
}

func (c *Client) streamKey(typeURL string) string {
	if c.ads {
		return ""
	}
	return typeURL
}

// streamFor returns the stream carrying typeURL, started now if need be;
// c.mu is held.
func (c *Client) streamFor(typeURL string) *stream {
	k := c.streamKey(typeURL)
	if st := c.streams[k]; st != nil {
		return st
	}
	st := newStream(c, k)
	c.streams[k] = st
	c.wg.Add(1)
	go st.run()
	return st
}

// jitter returns d scaled by a random factor in [0.5, 1).
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedNames(m map[string]proto.Message) []string { return sortedKeys(m) }
