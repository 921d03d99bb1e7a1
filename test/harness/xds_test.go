package harness_test

import (
	"context"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/metaproxy/metaproxy/test/harness"
)

const xdsWait = 20 * time.Second // generous: a loaded 2-core machine

// dialXDS connects to addr, reconnecting fast after the server restarts.
func dialXDS(t *testing.T, addr string) (context.Context, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: 5 * time.Second,
			Backoff: backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return ctx, conn
}

type xdsStream interface {
	Send(*discovery.DiscoveryRequest) error
	Recv() (*discovery.DiscoveryResponse, error)
}

func send(t *testing.T, st xdsStream, req *discovery.DiscoveryRequest) {
	t.Helper()
	if err := st.Send(req); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// recv returns the stream's next response (the stream's context bounds the wait).
func recv(t *testing.T, st xdsStream, typeURL, version string, n int) *discovery.DiscoveryResponse {
	t.Helper()
	resp, err := st.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	if resp.GetTypeUrl() != typeURL || resp.GetVersionInfo() != version || len(resp.GetResources()) != n || resp.GetNonce() == "" {
		t.Fatalf("got %s version %q nonce %q with %d resources, want %s version %q with %d",
			resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), len(resp.GetResources()), typeURL, version, n)
	}
	return resp
}

func unmarshal[M proto.Message](t *testing.T, resp *discovery.DiscoveryResponse, i int, m M) M {
	t.Helper()
	if err := resp.GetResources()[i].UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestXDSRoutesACKNACK(t *testing.T) {
	s := harness.StartXDSServer(t, harness.XDSOptions{})
	rc1 := harness.AerakiRoute("r1", harness.AerakiMetaRoute{Name: "a", Match: map[string]string{"method": "sayHello", "interface": "Greeter"},
		Cluster: "c1", HashHeaders: []string{"user"}, RequestHeaders: map[string]string{"x-req": "1"}, ResponseHeaders: map[string]string{"x-resp": "2"}})
	s.SetRoutes(t, "node-a", "v1", rc1)
	ctx, conn := dialXDS(t, s.Addr)
	rds := routeservice.NewRouteDiscoveryServiceClient(conn)
	st, err := rds.StreamRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"r1"}
	// The type URL is implicit on RDS's own service.
	send(t, st, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "node-a"}, ResourceNames: names})
	resp1 := recv(t, st, resource.RouteType, "v1", 1)
	got := unmarshal(t, resp1, 0, &routev3.RouteConfiguration{})
	if !proto.Equal(got, rc1) {
		t.Fatalf("route r1 = %v, want %v", got, rc1)
	}
	r := got.GetVirtualHosts()[0].GetRoutes()[0]
	if vh := got.GetVirtualHosts()[0]; vh.GetName() != "dummy" || !slices.Equal(vh.GetDomains(), []string{"*"}) ||
		r.GetMatch().GetPrefix() != "/" || len(r.GetMatch().GetHeaders()) != 2 ||
		r.GetMatch().GetHeaders()[0].GetName() != "interface" || r.GetMatch().GetHeaders()[0].GetStringMatch().GetExact() != "Greeter" ||
		r.GetRoute().GetCluster() != "c1" || r.GetRoute().GetHashPolicy()[0].GetHeader().GetHeaderName() != "user" ||
		r.GetRequestHeadersToAdd()[0].GetHeader().GetKey() != "x-req" || r.GetResponseHeadersToAdd()[0].GetHeader().GetValue() != "2" {
		t.Fatalf("AerakiRoute built %v", got)
	}
	send(t, st, &discovery.DiscoveryRequest{VersionInfo: "v1", ResponseNonce: resp1.GetNonce(), ResourceNames: names})
	s.WaitACK(t, resource.RouteType, "v1", xdsWait)

	rc2 := harness.AerakiRoute("r1", harness.AerakiMetaRoute{Name: "b", Weighted: map[string]uint32{"c2": 20, "c1": 80},
		MirrorCluster: "c3", MirrorPercent: 12.5})
	s.SetRoutes(t, "node-a", "v2", rc2)
	resp2 := recv(t, st, resource.RouteType, "v2", 1)
	ra := unmarshal(t, resp2, 0, &routev3.RouteConfiguration{}).GetVirtualHosts()[0].GetRoutes()[0].GetRoute()
	wc := ra.GetWeightedClusters().GetClusters()
	if len(wc) != 2 || wc[0].GetName() != "c1" || wc[0].GetWeight().GetValue() != 80 || wc[1].GetName() != "c2" ||
		ra.GetRequestMirrorPolicies()[0].GetCluster() != "c3" ||
		ra.GetRequestMirrorPolicies()[0].GetRuntimeFraction().GetDefaultValue().GetNumerator() != 125000 {
		t.Fatalf("weighted route = %v", ra)
	}
	send(t, st, &discovery.DiscoveryRequest{VersionInfo: "v1", ResponseNonce: resp2.GetNonce(), ResourceNames: names,
		ErrorDetail: status.New(codes.InvalidArgument, "bad route b").Proto()})
	nack := s.WaitNACK(t, resource.RouteType, xdsWait)
	if nack.Node != "node-a" || nack.Version != "v1" || nack.Nonce != resp2.GetNonce() || nack.ErrorDetail != "bad route b" || !slices.Equal(nack.Names, names) {
		t.Fatalf("NACK seen as %+v", nack)
	}
	// The cache answers a NACK (version v1 < v2) with the same snapshot again.
	resp3 := recv(t, st, resource.RouteType, "v2", 1)

	reqs := s.Requests(resource.RouteType)
	if len(reqs) != 3 || reqs[0].Version != "" || reqs[0].Nonce != "" || reqs[1].Nonce != resp1.GetNonce() || reqs[2].ErrorDetail == "" {
		t.Fatalf("requests = %+v", reqs)
	}
	for _, q := range reqs {
		if q.Node != "node-a" || q.Stream != reqs[0].Stream || q.Stream == 0 {
			t.Fatalf("request %+v: want node-a on stream %d", q, reqs[0].Stream)
		}
	}
	resps := s.Responses(resource.RouteType)
	if len(resps) != 3 || resps[0].Version != "v1" || resps[2].Nonce != resp3.GetNonce() || !slices.Equal(resps[1].Names, names) {
		t.Fatalf("responses = %+v", resps)
	}
	if n := s.Streams(); n != 1 {
		t.Fatalf("%d streams open, want 1", n)
	}
	// A fetch is seen too, with stream 0.
	fr, err := rds.FetchRoutes(ctx, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "node-a"}, ResourceNames: names})
	if err != nil || fr.GetVersionInfo() != "v2" {
		t.Fatalf("fetch: %v, %v", fr, err)
	}
	if reqs := s.Requests(resource.RouteType); len(reqs) != 4 || reqs[3].Stream != 0 || reqs[3].Node != "node-a" {
		t.Fatalf("requests after fetch = %+v", reqs)
	}
}

func edsCluster(name string) *clusterv3.Cluster {
	return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}}
}

func TestXDSADS(t *testing.T) {
	s := harness.StartXDSServer(t, harness.XDSOptions{})
	s.Set(t, "node-b", "1", map[resource.Type][]types.Resource{
		resource.ClusterType:  {edsCluster("c1")},
		resource.EndpointType: {harness.EDSAssignment("c1", "127.0.0.1:9001")},
		resource.RouteType:    {harness.AerakiRoute("r1")},
	})
	ctx, conn := dialXDS(t, s.Addr)
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send(t, st, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "node-b"}, TypeUrl: resource.ClusterType})
	cds := recv(t, st, resource.ClusterType, "1", 1)
	if c := unmarshal(t, cds, 0, &clusterv3.Cluster{}); c.GetName() != "c1" {
		t.Fatalf("cluster = %v", c)
	}
	send(t, st, &discovery.DiscoveryRequest{TypeUrl: resource.ClusterType, VersionInfo: "1", ResponseNonce: cds.GetNonce()})
	send(t, st, &discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: []string{"c1"}})
	eds := recv(t, st, resource.EndpointType, "1", 1)
	la := unmarshal(t, eds, 0, &endpointv3.ClusterLoadAssignment{})
	ep := la.GetEndpoints()[0].GetLbEndpoints()[0]
	if la.GetClusterName() != "c1" || ep.GetHealthStatus() != corev3.HealthStatus_HEALTHY || ep.GetLoadBalancingWeight().GetValue() != 1 ||
		ep.GetEndpoint().GetAddress().GetSocketAddress().GetAddress() != "127.0.0.1" ||
		ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() != 9001 {
		t.Fatalf("load assignment = %v", la)
	}
	send(t, st, &discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, VersionInfo: "1", ResponseNonce: eds.GetNonce(), ResourceNames: []string{"c1"}})
	s.WaitACK(t, resource.ClusterType, "1", xdsWait)
	s.WaitACK(t, resource.EndpointType, "1", xdsWait)

	// SetEndpoints keeps the clusters at version 1: only EDS is pushed.
	s.SetEndpoints(t, "node-b", "2", harness.EDSAssignment("c1", "127.0.0.1:9001", "127.0.0.1:9002"))
	eds2 := recv(t, st, resource.EndpointType, "2", 1)
	if n := len(unmarshal(t, eds2, 0, &endpointv3.ClusterLoadAssignment{}).GetEndpoints()[0].GetLbEndpoints()); n != 2 {
		t.Fatalf("%d endpoints, want 2", n)
	}
	for _, q := range s.Requests("") {
		if q.Node != "node-b" {
			t.Fatalf("request %+v: node not carried over from the stream's first request", q)
		}
	}
}

// With ADS semantics a request naming resources is not answered unless it
// names every resource of its type in the snapshot; names the snapshot
// lacks do not hold it back.
func TestXDSADSModeWantsEveryName(t *testing.T) {
	s := harness.StartXDSServer(t, harness.XDSOptions{ADS: true})
	s.SetRoutes(t, "node-c", "1", harness.AerakiRoute("r1"), harness.AerakiRoute("r2"))
	ctx, conn := dialXDS(t, s.Addr)
	st, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "node-c"}
	send(t, st, &discovery.DiscoveryRequest{Node: node, TypeUrl: resource.RouteType, ResourceNames: []string{"r1"}})
	send(t, st, &discovery.DiscoveryRequest{TypeUrl: resource.RouteType, ResourceNames: []string{"r1", "r2", "r3"}})
	// The first response on the stream answers the second request.
	recv(t, st, resource.RouteType, "1", 2)
	if reqs := s.Requests(resource.RouteType); len(reqs) != 2 || len(s.Responses(resource.RouteType)) != 1 {
		t.Fatalf("requests %+v, responses %+v", reqs, s.Responses(resource.RouteType))
	}
}

// A request from a node with no snapshot gets nothing (no error either)
// until the node's snapshot is set.
func TestXDSNodeWithoutSnapshotWaits(t *testing.T) {
	s := harness.StartXDSServer(t, harness.XDSOptions{})
	ctx, conn := dialXDS(t, s.Addr)
	st, err := routeservice.NewRouteDiscoveryServiceClient(conn).StreamRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send(t, st, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "node-e"}, ResourceNames: []string{"r1"}})
	for deadline := time.Now().Add(xdsWait); len(s.Requests(resource.RouteType)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server never saw the request")
		}
	}
	s.SetRoutes(t, "node-e", "v1", harness.AerakiRoute("r1"))
	recv(t, st, resource.RouteType, "v1", 1)
}

func TestXDSRestart(t *testing.T) {
	s := harness.StartXDSServer(t, harness.XDSOptions{})
	rc := harness.AerakiRoute("r1", harness.AerakiMetaRoute{Name: "a", Cluster: "c1"})
	s.SetRoutes(t, "node-d", "v1", rc)
	ctx, conn := dialXDS(t, s.Addr)
	rds := routeservice.NewRouteDiscoveryServiceClient(conn)
	st1, err := rds.StreamRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"r1"}
	send(t, st1, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "node-d"}, ResourceNames: names})
	resp := recv(t, st1, resource.RouteType, "v1", 1)
	send(t, st1, &discovery.DiscoveryRequest{VersionInfo: "v1", ResponseNonce: resp.GetNonce(), ResourceNames: names})
	s.WaitACK(t, resource.RouteType, "v1", xdsWait)

	s.Stop()
	if n := s.Streams(); n != 0 {
		t.Fatalf("%d streams open after Stop", n)
	}
	if _, err := st1.Recv(); err == nil {
		t.Fatal("the stream outlived Stop")
	}
	if err := harness.WaitPortClosed(s.Addr, xdsWait); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	// Reconnecting, a client (like Envoy) sends the version it has, without a nonce.
	st2, err := rds.StreamRoutes(ctx, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	send(t, st2, &discovery.DiscoveryRequest{Node: &corev3.Node{Id: "node-d"}, VersionInfo: "v1", ResourceNames: names})
	resp2 := recv(t, st2, resource.RouteType, "v1", 1)
	if got := unmarshal(t, resp2, 0, &routev3.RouteConfiguration{}); !proto.Equal(got, rc) {
		t.Fatalf("after restart: %v, want %v", got, rc)
	}
	reqs := s.Requests(resource.RouteType)
	if last := reqs[len(reqs)-1]; last.Stream == reqs[0].Stream || last.Version != "v1" || last.Nonce != "" {
		t.Fatalf("requests = %+v", reqs)
	}
	if n := s.Streams(); n != 1 {
		t.Fatalf("%d streams open after restart, want 1", n)
	}
}
