package cluster

import (
	"fmt"
	"math"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// EndpointsFromProto converts a load assignment: the single conversion,
// for a cluster's load_assignment and EDS resources. Every endpoint must be
// a socket_address (TCP, an address and a port_value in 1-65535) or a pipe
// (a unix socket's path), with a load_balancing_weight of at least 1
// (default 1), and the weights may sum to at most 2^32-1. Endpoints whose
// health_status is UNHEALTHY, DRAINING or TIMEOUT are checked, then
// dropped. Of several priorities only the lowest number (the highest
// priority) that keeps an endpoint is kept: Envoy's overprovisioned
// spill-over of traffic to the next priority while one is partly unhealthy
// is not reproduced. Locality weights, the policy, hostnames and
// per-endpoint health check settings are not read. la may be nil (no
// endpoints).
func EndpointsFromProto(la *endpointv3.ClusterLoadAssignment) ([]Endpoint, error) {
	if len(la.GetNamedEndpoints()) > 0 {
		return nil, fmt.Errorf("named_endpoints are not supported")
	}
	var out []Endpoint
	best := uint32(math.MaxUint32)
	for i, le := range la.GetEndpoints() {
		what := fmt.Sprintf("endpoints[%d]", i)
		if le.GetLedsClusterLocalityConfig() != nil {
			return nil, fmt.Errorf("%s.leds_cluster_locality_config: LEDS is not supported", what)
		}
		lbs := le.GetLbEndpoints()
		if list := le.GetLoadBalancerEndpoints(); list != nil {
			lbs = list.GetLbEndpoints()
		}
		loc := localityString(le.GetLocality())
		for j, lb := range lbs {
			ep, err := endpointFromProto(lb)
			if err != nil {
				return nil, fmt.Errorf("%s.lb_endpoints[%d]: %w", what, j, err)
			}
			switch lb.GetHealthStatus() {
			case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
				continue
			}
			ep.Priority, ep.Locality = le.GetPriority(), loc
			best = min(best, ep.Priority)
			out = append(out, ep)
		}
	}
	kept := out[:0]
	var sum uint64
	for _, ep := range out {
		if ep.Priority == best {
			kept = append(kept, ep)
			sum += uint64(ep.Weight)
		}
	}
	if sum > math.MaxUint32 {
		return nil, fmt.Errorf("the sum of the endpoints' load_balancing_weight exceeds %d", uint64(math.MaxUint32))
	}
	return kept, nil
}

func endpointFromProto(lb *endpointv3.LbEndpoint) (Endpoint, error) {
	if lb.GetEndpointName() != "" {
		return Endpoint{}, fmt.Errorf("endpoint_name (named_endpoints) is not supported: set endpoint")
	}
	var ep Endpoint
	switch a := lb.GetEndpoint().GetAddress().GetAddress().(type) {
	case *corev3.Address_SocketAddress:
		sa := a.SocketAddress
		if sa.GetProtocol() != corev3.SocketAddress_TCP {
			return ep, fmt.Errorf("protocol %q is not supported", sa.GetProtocol())
		}
		if sa.GetNamedPort() != "" {
			return ep, fmt.Errorf("named_port is not supported: use port_value")
		}
		if sa.GetResolverName() != "" {
			return ep, fmt.Errorf("resolver_name is not supported")
		}
		ep.Host, ep.Port = sa.GetAddress(), int(sa.GetPortValue())
		if ep.Host == "" || ep.Port <= 0 || ep.Port > 65535 {
			return ep, fmt.Errorf("endpoint needs socket_address.address and a port_value in 1-65535")
		}
	case *corev3.Address_Pipe:
		if ep.Path = a.Pipe.GetPath(); ep.Path == "" {
			return ep, fmt.Errorf("endpoint needs pipe.path")
		}
	default:
		return ep, fmt.Errorf("endpoint needs socket_address.address and a port_value in 1-65535, or pipe.path")
	}
	name := ep.Path
	if name == "" {
		name = fmt.Sprintf("%s:%d", ep.Host, ep.Port)
	}
	ep.Weight = 1
	if w := lb.GetLoadBalancingWeight(); w != nil {
		ep.Weight = w.GetValue()
	}
	if ep.Weight == 0 {
		return ep, fmt.Errorf("endpoint %s: load_balancing_weight must be at least 1", name)
	}
	// Like Envoy, a hash_key that is not a string is ignored.
	ep.HashKey = lb.GetMetadata().GetFilterMetadata()["envoy.lb"].GetFields()["hash_key"].GetStringValue()
	return ep, nil
}

// localityString is "region/zone/sub_zone" without its trailing empty
// parts (as Istio writes localities); "" for none.
func localityString(l *corev3.Locality) string {
	return strings.TrimRight(strings.Join([]string{l.GetRegion(), l.GetZone(), l.GetSubZone()}, "/"), "/")
}
