package cluster

import (
	"reflect"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestParsePipe(t *testing.T) {
	c := mustParse(t, `{"name":"xds","http2_protocol_options":{},"load_assignment":{"endpoints":[{"lb_endpoints":[
	  {"endpoint":{"address":{"pipe":{"path":"/run/xds.sock"}}}}]}]}}`)
	if !c.HTTP2 || len(c.Endpoints) != 1 || c.Endpoints[0] != (Endpoint{Path: "/run/xds.sock", Weight: 1}) {
		t.Fatalf("pipe endpoint: %+v", c)
	}
	for _, typ := range []Type{Static, StrictDNS} {
		c.Type = typ
		if _, err := New(c, nil); err == nil || !strings.Contains(err.Error(), `endpoint "/run/xds.sock" is a pipe (unix socket): routed clusters need socket addresses`) {
			t.Errorf("New of a %s cluster with a pipe: %v", typ, err)
		}
	}
	wantError(t, "empty path", `{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"pipe":{}}}}]}]}}`, "endpoint needs pipe.path")
	wantError(t, "pipe and socket", `{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"pipe":{"path":"/s"},
	  "socket_address":{"address":"127.0.0.1","port_value":1}}}}]}]}}`, "socket_address and pipe are one of address: set only one")
}

func lbEndpoint(addr string, port uint32, status corev3.HealthStatus) *endpointv3.LbEndpoint {
	return &endpointv3.LbEndpoint{HealthStatus: status, HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}}}}
}

func TestEndpointsFromProto(t *testing.T) {
	keyed := lbEndpoint("10.0.1.2", 80, corev3.HealthStatus_HEALTHY)
	keyed.LoadBalancingWeight = wrapperspb.UInt32(7)
	md, _ := structpb.NewStruct(map[string]any{"hash_key": "k"})
	keyed.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.lb": md}}
	la := &endpointv3.ClusterLoadAssignment{ClusterName: "svc", Endpoints: []*endpointv3.LocalityLbEndpoints{
		{Priority: 0, Locality: &corev3.Locality{Region: "eu", Zone: "eu-1"}, LbEndpoints: []*endpointv3.LbEndpoint{
			lbEndpoint("10.0.0.1", 80, corev3.HealthStatus_UNHEALTHY), lbEndpoint("10.0.0.2", 80, corev3.HealthStatus_DRAINING),
			lbEndpoint("10.0.0.3", 80, corev3.HealthStatus_TIMEOUT)}},
		{Priority: 1, Locality: &corev3.Locality{Region: "eu", Zone: "eu-2", SubZone: "rack-3"}, LbEndpoints: []*endpointv3.LbEndpoint{
			lbEndpoint("10.0.1.1", 80, corev3.HealthStatus_DEGRADED), keyed}},
		{Priority: 1, LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("10.0.1.3", 80, corev3.HealthStatus_UNKNOWN)}},
		{Priority: 2, Locality: &corev3.Locality{Zone: "z"}, LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("10.0.2.1", 80, 0)}},
	}}
	got, err := EndpointsFromProto(la)
	want := []Endpoint{
		{Host: "10.0.1.1", Port: 80, Weight: 1, Priority: 1, Locality: "eu/eu-2/rack-3"},
		{Host: "10.0.1.2", Port: 80, Weight: 7, HashKey: "k", Priority: 1, Locality: "eu/eu-2/rack-3"},
		{Host: "10.0.1.3", Port: 80, Weight: 1, Priority: 1},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v\nwant %+v", got, err, want)
	}
	// Priority 0 keeps an endpoint: only it stays.
	la.Endpoints[0].LbEndpoints = append(la.Endpoints[0].LbEndpoints, lbEndpoint("10.0.0.4", 80, corev3.HealthStatus_HEALTHY))
	if got, err := EndpointsFromProto(la); err != nil || len(got) != 1 || got[0].Host != "10.0.0.4" || got[0].Locality != "eu/eu-1" {
		t.Errorf("priority 0 with a healthy endpoint: %+v, %v", got, err)
	}
	if got, err := EndpointsFromProto(&endpointv3.ClusterLoadAssignment{Endpoints: []*endpointv3.LocalityLbEndpoints{
		{Locality: &corev3.Locality{Zone: "z"}, LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("10.0.2.1", 80, 0)}}}}); err != nil || got[0].Locality != "/z" {
		t.Errorf("zone only: %+v, %v", got, err)
	}
	if got, err := EndpointsFromProto(nil); err != nil || got != nil {
		t.Errorf("nil: %+v, %v", got, err)
	}
	zero := lbEndpoint("10.0.0.1", 80, 0)
	zero.LoadBalancingWeight = wrapperspb.UInt32(0)
	udp := lbEndpoint("10.0.0.1", 80, 0)
	udp.GetEndpoint().GetAddress().GetSocketAddress().Protocol = corev3.SocketAddress_UDP
	for name, tc := range map[string]struct {
		lb   *endpointv3.LbEndpoint
		want string
	}{
		"port 0":         {lbEndpoint("10.0.0.1", 0, 0), "endpoints[0].lb_endpoints[0]: endpoint needs socket_address.address and a port_value in 1-65535"},
		"port 65536":     {lbEndpoint("10.0.0.1", 65536, 0), "port_value in 1-65535"},
		"no address":     {lbEndpoint("", 80, 0), "port_value in 1-65535"},
		"weight 0":       {zero, "endpoint 10.0.0.1:80: load_balancing_weight must be at least 1"},
		"udp":            {udp, `protocol "UDP" is not supported`},
		"unhealthy, bad": {lbEndpoint("10.0.0.1", 0, corev3.HealthStatus_UNHEALTHY), "port_value"}, // checked before it is dropped
		"no endpoint":    {&endpointv3.LbEndpoint{}, "or pipe.path"},
	} {
		_, err := EndpointsFromProto(&endpointv3.ClusterLoadAssignment{Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{tc.lb}}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}
