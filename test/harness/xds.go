package harness

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// XDSServer is an in-process xDS management server: go-control-plane's
// gRPC server over its state-of-the-world snapshot cache (cache/v3
// SnapshotCache, node ids hashed with IDHash). It serves ADS and the
// separate LDS, RDS, CDS and EDS services. It records every discovery
// request and response it handles.
//
// Traps of the go-control-plane cache (pinned by xds_test.go):
//   - a request whose node id has no snapshot gets no answer and no error;
//     it waits until Set is called for that node;
//   - with XDSOptions.ADS a request naming resources gets no answer unless
//     it names every resource of its type in the node's snapshot (names the
//     snapshot lacks are fine: the answer holds those it has); an
//     unanswered watch is dropped, so a later Set does not answer it either
//     and the client has to send a new request (wildcard requests are
//     always answered);
//   - a NACK (version_info older than the snapshot's) is answered with the
//     same snapshot again, at once;
//   - Snapshot.Consistent() fails for routes without a listener: this
//     server never calls it.
type XDSServer struct {
	// Addr is "127.0.0.1:P", the same across Restart.
	Addr string

	cache cachev3.SnapshotCache
	setMu sync.Mutex                              // serializes Set and friends
	nodes map[string]map[string]cachev3.Resources // under setMu: node -> type -> resources

	mu        sync.Mutex
	grpc      *grpc.Server
	cancel    context.CancelFunc
	served    chan struct{} // closed when Serve returns
	streams   int
	lastID    int64 // the last stream id handed out, across restarts
	requests  []Request
	responses []Response
}

// XDSOptions configures StartXDSServer.
type XDSOptions struct {
	// ADS gives the cache ADS semantics (cachev3.NewSnapshotCache's ads
	// argument): a request naming resources is answered only if it names
	// every resource of its type in the snapshot (see XDSServer).
	ADS bool
	// Port is the port to listen on; 0 picks a free one.
	Port int
}

// Request is one DiscoveryRequest as the server got it, on a stream or as a
// fetch.
type Request struct {
	TypeURL     string
	Stream      int64    // stream id (unique across Restart); 0 for a fetch
	Node        string   // node id; on a stream, the one its first request gave
	Version     string   // version_info
	Nonce       string   // response_nonce
	Names       []string // resource_names
	ErrorDetail string   // error_detail's message ("" unless a NACK)
}

// Response is one DiscoveryResponse the server sent.
type Response struct {
	TypeURL, Node, Version, Nonce string
	Stream                        int64    // 0 for a fetch
	Names                         []string // names of the resources it held
}

// StartXDSServer starts a gRPC server serving ADS and the separate RDS, CDS,
// EDS and LDS services from one go-control-plane SotW snapshot cache
// (ads=false unless opts.ADS), on 127.0.0.1 and opts.Port or a free port.
// The server is stopped when the test ends.
func StartXDSServer(t testing.TB, opts XDSOptions) *XDSServer {
	t.Helper()
	port := opts.Port
	if port == 0 {
		port = FreePort(t)
	}
	s := &XDSServer{
		Addr:  Addr(port),
		cache: cachev3.NewSnapshotCache(opts.ADS, cachev3.IDHash{}, nil),
		nodes: map[string]map[string]cachev3.Resources{},
	}
	s.serve(t)
	t.Cleanup(s.Stop)
	return s
}

func (s *XDSServer) serve(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", s.Addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("xds server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	xs := serverv3.NewServer(ctx, s.cache, s.callbacks())
	g := grpc.NewServer(grpc.WaitForHandlers(true))
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, xs)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, xs)
	routeservice.RegisterRouteDiscoveryServiceServer(g, xs)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, xs)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, xs)
	served := make(chan struct{})
	s.mu.Lock()
	s.grpc, s.cancel, s.served = g, cancel, served
	s.mu.Unlock()
	go func() { defer close(served); g.Serve(ln) }()
}

func (s *XDSServer) callbacks() serverv3.Callbacks {
	ids := map[int64]int64{} // under s.mu: this incarnation's stream ids -> ours
	rec := func(stream int64, req *discoverygrpc.DiscoveryRequest) {
		r := Request{TypeURL: req.GetTypeUrl(), Node: req.GetNode().GetId(),
			Version: req.GetVersionInfo(), Nonce: req.GetResponseNonce(),
			Names: append([]string(nil), req.GetResourceNames()...)}
		if d := req.GetErrorDetail(); d != nil {
			r.ErrorDetail = d.GetMessage()
			if r.ErrorDetail == "" {
				r.ErrorDetail = fmt.Sprintf("code %d", d.GetCode())
			}
		}
		s.mu.Lock()
		r.Stream = ids[stream]
		s.requests = append(s.requests, r)
		s.mu.Unlock()
	}
	sent := func(stream int64, req *discoverygrpc.DiscoveryRequest, resp *discoverygrpc.DiscoveryResponse) {
		r := Response{TypeURL: resp.GetTypeUrl(), Node: req.GetNode().GetId(),
			Version: resp.GetVersionInfo(), Nonce: resp.GetNonce()}
		for _, a := range resp.GetResources() {
			if m, err := a.UnmarshalNew(); err == nil {
				r.Names = append(r.Names, cachev3.GetResourceName(m))
			}
		}
		s.mu.Lock()
		r.Stream = ids[stream]
		s.responses = append(s.responses, r)
		s.mu.Unlock()
	}
	return serverv3.CallbackFuncs{
		StreamOpenFunc: func(_ context.Context, id int64, _ string) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.streams++
			s.lastID++
			ids[id] = s.lastID
			return nil
		},
		StreamClosedFunc: func(id int64, _ *corev3.Node) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.streams--
			delete(ids, id)
		},
		StreamRequestFunc: func(id int64, req *discoverygrpc.DiscoveryRequest) error { rec(id, req); return nil },
		StreamResponseFunc: func(_ context.Context, id int64, req *discoverygrpc.DiscoveryRequest, resp *discoverygrpc.DiscoveryResponse) {
			sent(id, req, resp)
		},
		FetchRequestFunc:  func(_ context.Context, req *discoverygrpc.DiscoveryRequest) error { rec(0, req); return nil },
		FetchResponseFunc: func(req *discoverygrpc.DiscoveryRequest, resp *discoverygrpc.DiscoveryResponse) { sent(0, req, resp) },
	}
}

// Stop stops the server: it ends the xDS streams, GracefulStops the gRPC
// server for at most 2 s, then Stops it, and returns once every handler
// has returned and the port is closed. Stopping a stopped server does
// nothing. The cache (every node's snapshot) is kept for Restart.
func (s *XDSServer) Stop() {
	s.mu.Lock()
	g, cancel, served := s.grpc, s.cancel, s.served
	s.grpc = nil
	s.mu.Unlock()
	if g == nil {
		return
	}
	done := make(chan struct{})
	go func() { defer close(done); g.GracefulStop() }()
	cancel() // the xDS streams return, so GracefulStop need not wait for clients
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		g.Stop()
		<-done
	}
	<-served
}

// Restart starts the server again on the same port with the same cache
// contents, so a client reconnecting sees the same snapshots. A running
// server is stopped first.
func (s *XDSServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.serve(t)
}

// Set replaces node's snapshot: every type of res gets version, and types
// not in res are dropped. The version is the caller's: nothing is bumped.
// A type with an empty (non-nil or nil) slice is sent as an empty response.
// Set does not call Snapshot.Consistent. Do not modify the resources after.
func (s *XDSServer) Set(t testing.TB, node, version string, res map[resource.Type][]types.Resource) {
	t.Helper()
	s.setMu.Lock()
	defer s.setMu.Unlock()
	m := map[string]cachev3.Resources{}
	for typ, items := range res {
		m[typ] = cachev3.NewResources(version, items)
	}
	s.nodes[node] = m
	s.applyLocked(t, node)
}

// SetType replaces node's resources of one type with version, keeping its
// other types (and their versions) as they are.
func (s *XDSServer) SetType(t testing.TB, node string, typeURL resource.Type, version string, res ...types.Resource) {
	t.Helper()
	s.setMu.Lock()
	defer s.setMu.Unlock()
	if s.nodes[node] == nil {
		s.nodes[node] = map[string]cachev3.Resources{}
	}
	s.nodes[node][typeURL] = cachev3.NewResources(version, res)
	s.applyLocked(t, node)
}

func (s *XDSServer) applyLocked(t testing.TB, node string) {
	t.Helper()
	snap := &cachev3.Snapshot{}
	for typ, r := range s.nodes[node] {
		i := cachev3.GetResponseType(typ)
		if i == types.UnknownType {
			t.Fatalf("xds server: unknown resource type %q", typ)
		}
		snap.Resources[i] = r
	}
	if err := s.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		t.Fatalf("xds server: set snapshot of %q: %v", node, err)
	}
}

// SetRoutes replaces node's route configurations (RDS) with version,
// keeping its other resource types.
func (s *XDSServer) SetRoutes(t testing.TB, node, version string, rcs ...*routev3.RouteConfiguration) {
	t.Helper()
	s.SetType(t, node, resource.RouteType, version, toResources(rcs)...)
}

// SetClusters replaces node's clusters (CDS) with version, keeping its other
// resource types.
func (s *XDSServer) SetClusters(t testing.TB, node, version string, cs ...*clusterv3.Cluster) {
	t.Helper()
	s.SetType(t, node, resource.ClusterType, version, toResources(cs)...)
}

// SetEndpoints replaces node's load assignments (EDS) with version, keeping
// its other resource types.
func (s *XDSServer) SetEndpoints(t testing.TB, node, version string, las ...*endpointv3.ClusterLoadAssignment) {
	t.Helper()
	s.SetType(t, node, resource.EndpointType, version, toResources(las)...)
}

func toResources[M types.Resource](ms []M) []types.Resource {
	out := make([]types.Resource, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// Requests returns every DiscoveryRequest seen for typeURL ("" for every
// type), in the order the server got them. A request is recorded before the
// server acts on it, so one answered is always here.
func (s *XDSServer) Requests(typeURL string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ofType(s.requests, typeURL, func(r Request) string { return r.TypeURL })
}

// Responses returns every DiscoveryResponse sent for typeURL ("" for every
// type), in order. A response is recorded just before it is sent, so one a
// client has received is always here.
func (s *XDSServer) Responses(typeURL string) []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ofType(s.responses, typeURL, func(r Response) string { return r.TypeURL })
}

func ofType[T any](all []T, typeURL string, typeOf func(T) string) []T {
	var out []T
	for _, r := range all {
		if typeURL == "" || typeOf(r) == typeURL {
			out = append(out, r)
		}
	}
	return out
}

// Streams returns the number of xDS streams open now.
func (s *XDSServer) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams
}

// WaitACK polls until a request for typeURL carries version_info==version,
// a response nonce and no error_detail; it fails t with what it saw if none
// came within timeout.
func (s *XDSServer) WaitACK(t testing.TB, typeURL, version string, timeout time.Duration) {
	t.Helper()
	s.waitRequest(t, typeURL, timeout, "an ACK of "+version, func(r Request) bool {
		return r.Version == version && r.Nonce != "" && r.ErrorDetail == ""
	})
}

// WaitNACK polls until a request for typeURL carries an error_detail and
// returns the first such request; it fails t if none came within timeout.
// Its Version is the last version the client accepted and its Nonce the
// rejected response's.
func (s *XDSServer) WaitNACK(t testing.TB, typeURL string, timeout time.Duration) Request {
	t.Helper()
	return s.waitRequest(t, typeURL, timeout, "a NACK", func(r Request) bool { return r.ErrorDetail != "" })
}

func (s *XDSServer) waitRequest(t testing.TB, typeURL string, timeout time.Duration, what string, ok func(Request) bool) Request {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		reqs := s.Requests(typeURL)
		for _, r := range reqs {
			if ok(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, r := range reqs {
				fmt.Fprintf(&b, "\n  request %+v", r)
				if _, err := s.cache.GetSnapshot(r.Node); err != nil {
					fmt.Fprintf(&b, " (node %q has no snapshot)", r.Node)
				}
			}
			for _, r := range s.Responses(typeURL) {
				fmt.Fprintf(&b, "\n  response %+v", r)
			}
			t.Fatalf("xds server: no %s for %s in %v; saw:%s", what, typeURL, timeout, b.String())
		}
	}
}
