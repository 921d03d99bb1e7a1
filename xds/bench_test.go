package xds

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/router"
)

// What a pushed update costs metaproxy: decoding the resource, turning it
// into engine state, and the memory that state holds.

// routes1k is an Aeraki RDS answer with n routes, exact matches on
// interface and method as Aeraki generates per service.
func routesN(n int) *routev3.RouteConfiguration {
	exact := func(k, v string) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{Name: k, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}}
	}
	vh := &routev3.VirtualHost{Name: "dummy", Domains: []string{"*"}}
	for i := range n {
		vh.Routes = append(vh.Routes, &routev3.Route{Name: fmt.Sprint("r", i),
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*routev3.HeaderMatcher{exact("interface", fmt.Sprintf("org.example.Service%d", i/10)), exact("method", fmt.Sprint("m", i%10))}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: fmt.Sprintf("outbound|20880||svc%d", i/10)}}}})
	}
	return &routev3.RouteConfiguration{Name: "rds", VirtualHosts: []*routev3.VirtualHost{vh}}
}

func assignmentN(n int) *endpointv3.ClusterLoadAssignment {
	la := &endpointv3.ClusterLoadAssignment{ClusterName: "eds"}
	lle := &endpointv3.LocalityLbEndpoints{Locality: &corev3.Locality{Zone: "z"}}
	for i := range n {
		lle.LbEndpoints = append(lle.LbEndpoints, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 20880}}}}}}})
	}
	la.Endpoints = []*endpointv3.LocalityLbEndpoints{lle}
	return la
}

type tableSink struct{ t *router.Table }

func (s *tableSink) SetDiscoveredRoutes(t *router.Table) error { s.t = t; return nil }

// BenchmarkRDSUpdate: a 1,000-route update from the wire to an installed
// route table (decode, convert, compile), and the heap the table holds.
func BenchmarkRDSUpdate1kRoutes(b *testing.B) {
	a, _ := anypb.New(routesN(1000))
	sink := &tableSink{}
	b.ReportAllocs()
	for b.Loop() {
		_, m, err := decode(RouteType, a)
		if err != nil {
			b.Fatal(err)
		}
		if err := applyRoutes("rds", []proto.Message{m}, sink); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(heapOf(func() any {
		_, m, _ := decode(RouteType, a)
		s := &tableSink{}
		_ = applyRoutes("rds", []proto.Message{m}, s)
		return s.t
	})), "table-bytes")
}

// BenchmarkEDSUpdate10k: a 10,000-endpoint assignment from the wire to
// the cluster's host set, with one endpoint changed each time (the hosts
// that stay keep their state), for round robin and ring hash.
func BenchmarkEDSUpdate10kEndpoints(b *testing.B) {
	for _, lb := range []string{"ROUND_ROBIN", "RING_HASH", "MAGLEV"} {
		b.Run(lb, func(b *testing.B) {
			c, err := cluster.New(cluster.Config{Name: "eds", Type: cluster.EDS, LBPolicy: lb, ConnectTimeout: time.Second,
				EDS: &cluster.EDSConfig{ServiceName: "eds"}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			las := [2]*anypb.Any{}
			for i := range las {
				la := assignmentN(10000)
				la.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().Address = fmt.Sprint("10.255.255.", i)
				las[i], _ = anypb.New(la)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, m, err := decode(EndpointType, las[i%2])
				if err != nil {
					b.Fatal(err)
				}
				eps, err := cluster.EndpointsFromProto(m.(*endpointv3.ClusterLoadAssignment))
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Update(eps); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// heapOf returns the live heap that build's result holds.
func heapOf(build func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return after.HeapAlloc - before.HeapAlloc
}
