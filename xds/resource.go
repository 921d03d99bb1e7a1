package xds

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// The resource types metaproxy subscribes to.
const (
	RouteType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	ClusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	EndpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

const wrapperType = "type.googleapis.com/envoy.service.discovery.v3.Resource"

// decode unpacks one resource of a response of type typeURL (bare, or
// wrapped in a discovery Resource) and returns its name.
func decode(typeURL string, a *anypb.Any) (string, proto.Message, error) {
	if a.GetTypeUrl() == wrapperType {
		var w discoveryv3.Resource
		if err := a.UnmarshalTo(&w); err != nil {
			return "", nil, fmt.Errorf("resource wrapper: %w", err)
		}
		a = w.GetResource()
	}
	if a.GetTypeUrl() != typeURL {
		return "", nil, fmt.Errorf("a %s resource in a response of type %s", a.GetTypeUrl(), typeURL)
	}
	var m proto.Message
	switch typeURL {
	case RouteType:
		m = &routev3.RouteConfiguration{}
	case ClusterType:
		m = &clusterv3.Cluster{}
	case EndpointType:
		m = &endpointv3.ClusterLoadAssignment{}
	default:
		return "", nil, fmt.Errorf("resource type %s is not supported", typeURL)
	}
	if err := a.UnmarshalTo(m); err != nil {
		return "", nil, fmt.Errorf("%s: %w", typeURL, err)
	}
	var name string
	switch r := m.(type) {
	case *routev3.RouteConfiguration:
		name = r.GetName()
	case *clusterv3.Cluster:
		name = r.GetName()
	case *endpointv3.ClusterLoadAssignment:
		name = r.GetClusterName()
	}
	if name == "" {
		return "", nil, fmt.Errorf("a %s resource without a name", typeURL)
	}
	return name, m, nil
}
