package harness

import (
	"maps"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The resources a test's xDS server serves, shaped as the control planes
// metaproxy meets send them.

// AerakiMetaRoute is one route of AerakiRoute.
type AerakiMetaRoute struct {
	Name            string
	Match           map[string]string // header (metadata) name -> exact value
	Cluster         string            // used when Weighted is empty
	Weighted        map[string]uint32 // cluster -> weight
	HashHeaders     []string
	RequestHeaders  map[string]string
	ResponseHeaders map[string]string
	MirrorCluster   string
	MirrorPercent   float64 // 0..100; 0 mirrors every request (no runtime_fraction)
}

// AerakiRoute builds an Envoy HTTP RouteConfiguration named name with one
// virtual host "dummy" (domains "*"), one route per MetaRoute: match.prefix
// "/" plus match.headers (exact string matches from r.Match, sorted by
// name), route.cluster or weighted_clusters (r.Weighted, sorted by
// cluster), hash_policy header names, request_headers_to_add /
// response_headers_to_add (sorted by key), and a request mirror policy
// whose runtime_fraction is MirrorPercent per million, as Istio writes it.
func AerakiRoute(name string, routes ...AerakiMetaRoute) *routev3.RouteConfiguration {
	vh := &routev3.VirtualHost{Name: "dummy", Domains: []string{"*"}}
	for _, r := range routes {
		match := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
		for _, k := range slices.Sorted(maps.Keys(r.Match)) {
			match.Headers = append(match.Headers, &routev3.HeaderMatcher{Name: k,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: r.Match[k]}}}})
		}
		action := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: r.Cluster}}
		if len(r.Weighted) > 0 {
			wc := &routev3.WeightedCluster{}
			for _, c := range slices.Sorted(maps.Keys(r.Weighted)) {
				wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: c, Weight: wrapperspb.UInt32(r.Weighted[c])})
			}
			action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
		}
		for _, h := range r.HashHeaders {
			action.HashPolicy = append(action.HashPolicy, &routev3.RouteAction_HashPolicy{
				PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: h}}})
		}
		if r.MirrorCluster != "" {
			m := &routev3.RouteAction_RequestMirrorPolicy{Cluster: r.MirrorCluster}
			if r.MirrorPercent > 0 {
				m.RuntimeFraction = &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
					Numerator: uint32(r.MirrorPercent*10000 + 0.5), Denominator: typev3.FractionalPercent_MILLION}}
			}
			action.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{m}
		}
		vh.Routes = append(vh.Routes, &routev3.Route{Name: r.Name, Match: match,
			Action:               &routev3.Route_Route{Route: action},
			RequestHeadersToAdd:  headerOptions(r.RequestHeaders),
			ResponseHeadersToAdd: headerOptions(r.ResponseHeaders)})
	}
	return &routev3.RouteConfiguration{Name: name, VirtualHosts: []*routev3.VirtualHost{vh}}
}

// EDSAssignment builds a ClusterLoadAssignment for cluster with one
// locality holding the endpoints "ip:port" (weight 1, HEALTHY). It panics
// on an address that is not ip:port.
func EDSAssignment(cluster string, addrs ...string) *endpointv3.ClusterLoadAssignment {
	lb := &endpointv3.LocalityLbEndpoints{}
	for _, a := range addrs {
		lb.LbEndpoints = append(lb.LbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier:      &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddr(a)}},
			HealthStatus:        corev3.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(1),
		})
	}
	return &endpointv3.ClusterLoadAssignment{ClusterName: cluster, Endpoints: []*endpointv3.LocalityLbEndpoints{lb}}
}

func headerOptions(h map[string]string) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, k := range slices.Sorted(maps.Keys(h)) {
		out = append(out, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: h[k]}})
	}
	return out
}
