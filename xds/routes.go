package xds

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metaproxy/metaproxy/api/envoy"
	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
)

// MetaRoutes turns an Envoy HTTP RouteConfiguration, the form Aeraki's
// control plane sends MetaProtocol routes in, into a MetaProtocol route
// configuration, as Aeraki's data plane does
// (httpRouteConfig2MetaProtocolRouteConfig): exactly one virtual host; per
// route its name, match.headers as metadata matchers, cluster or
// weighted_clusters, hash_policy header names, request_mirror_policies,
// request_headers_to_add as the request mutation and
// response_headers_to_add as the response mutation (which metaproxy
// applies; Aeraki does not). Route timeout and retry_policy (num_retries,
// per_try_timeout, retry_on) carry over too. Anything a meta route cannot
// express is an error naming it, so that the update is NACKed rather than
// half applied.
func MetaRoutes(rc *routev3.RouteConfiguration) (*routev1alpha.RouteConfiguration, error) {
	vhs := rc.GetVirtualHosts()
	if len(vhs) != 1 {
		return nil, fmt.Errorf("route configuration %q has %d virtual hosts: a MetaProtocol route configuration has exactly one", rc.GetName(), len(vhs))
	}
	out := &routev1alpha.RouteConfiguration{Name: rc.GetName()}
	for i, r := range vhs[0].GetRoutes() {
		mr, err := metaRoute(r)
		if err != nil {
			return nil, fmt.Errorf("route configuration %q: routes[%d] (%q): %w", rc.GetName(), i, r.GetName(), err)
		}
		out.Routes = append(out.Routes, mr)
	}
	return out, nil
}

func metaRoute(r *routev3.Route) (*routev1alpha.Route, error) {
	a := r.GetRoute()
	if a == nil {
		return nil, fmt.Errorf("only route actions are supported (not redirect, direct_response or filter_action)")
	}
	mr := &routev1alpha.Route{Name: r.GetName(), Match: &routev1alpha.RouteMatch{}, Route: &routev1alpha.RouteAction{}}
	for j, h := range r.GetMatch().GetHeaders() {
		m := &envoy.HeaderMatcher{}
		if err := rewire(h, m); err != nil {
			return nil, fmt.Errorf("match.headers[%d]: %w", j, err)
		}
		mr.Match.Metadata = append(mr.Match.Metadata, m)
	}
	switch cs := a.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		mr.Route.ClusterSpecifier = &routev1alpha.RouteAction_Cluster{Cluster: cs.Cluster}
	case *routev3.RouteAction_WeightedClusters:
		wc := &envoy.WeightedCluster{}
		if err := rewire(cs.WeightedClusters, wc); err != nil {
			return nil, fmt.Errorf("route.weighted_clusters: %w", err)
		}
		mr.Route.ClusterSpecifier = &routev1alpha.RouteAction_WeightedClusters{WeightedClusters: wc}
	default:
		return nil, fmt.Errorf("route: only cluster and weighted_clusters are supported")
	}
	for j, hp := range a.GetHashPolicy() {
		h := hp.GetHeader()
		if h == nil || h.GetHeaderName() == "" {
			return nil, fmt.Errorf("route.hash_policy[%d]: only header hash policies are supported", j)
		}
		mr.Route.HashPolicy = append(mr.Route.HashPolicy, h.GetHeaderName())
	}
	for j, mp := range a.GetRequestMirrorPolicies() {
		m := &routev1alpha.RouteAction_RequestMirrorPolicy{Cluster: mp.GetCluster()}
		if f := mp.GetRuntimeFraction(); f != nil {
			m.RuntimeFraction = &envoy.RuntimeFractionalPercent{}
			if err := rewire(&corev3.RuntimeFractionalPercent{DefaultValue: f.GetDefaultValue()}, m.RuntimeFraction); err != nil {
				return nil, fmt.Errorf("route.request_mirror_policies[%d]: %w", j, err)
			}
		}
		mr.Route.RequestMirrorPolicies = append(mr.Route.RequestMirrorPolicies, m)
	}
	mr.Route.Timeout = a.GetTimeout()
	if rp := a.GetRetryPolicy(); rp != nil {
		mr.Route.RetryPolicy = &routev1alpha.RetryPolicy{PerTryTimeout: rp.GetPerTryTimeout(), RetryOn: rp.GetRetryOn()}
		if n := rp.GetNumRetries(); n != nil {
			mr.Route.RetryPolicy.NumRetries = wrapperspb.UInt32(n.GetValue())
		}
	}
	var err error
	if mr.RequestMutation, err = mutation(r.GetRequestHeadersToAdd()); err != nil {
		return nil, fmt.Errorf("request_headers_to_add: %w", err)
	}
	if mr.ResponseMutation, err = mutation(r.GetResponseHeadersToAdd()); err != nil {
		return nil, fmt.Errorf("response_headers_to_add: %w", err)
	}
	return mr, nil
}

func mutation(hs []*corev3.HeaderValueOption) ([]*routev1alpha.KeyValue, error) {
	var out []*routev1alpha.KeyValue
	for i, h := range hs {
		k, v := h.GetHeader().GetKey(), h.GetHeader().GetValue()
		if k == "" {
			return nil, fmt.Errorf("[%d]: header.key is required", i)
		}
		out = append(out, &routev1alpha.KeyValue{Key: k, Value: v})
	}
	return out, nil
}

// rewire copies src into dst, a wire-compatible mirror of it, through the
// protobuf wire format. A field of src that dst does not know is an error
// naming it: the meta route would otherwise silently ignore it.
func rewire(src, dst proto.Message) error {
	b, err := proto.Marshal(src)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, dst); err != nil {
		return err
	}
	if path := unknownField(dst.ProtoReflect(), src.ProtoReflect().Descriptor()); path != "" {
		return fmt.Errorf("field %s is not supported", path)
	}
	return nil
}

// unknownField returns the path of the first field m did not know, named
// as in the source descriptor desc, or "".
func unknownField(m protoreflect.Message, desc protoreflect.MessageDescriptor) string {
	if u := m.GetUnknown(); len(u) > 0 {
		num, _, _ := protowire.ConsumeTag(u)
		if f := desc.Fields().ByNumber(num); f != nil {
			return string(f.Name())
		}
		return fmt.Sprintf("number %d", num)
	}
	var found string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		sub := desc.Fields().ByNumber(fd.Number())
		if sub == nil || sub.Message() == nil {
			return true
		}
		check := func(v protoreflect.Value) {
			if p := unknownField(v.Message(), sub.Message()); p != "" && found == "" {
				found = string(fd.Name()) + "." + p
			}
		}
		if fd.IsList() {
			for i := 0; i < v.List().Len(); i++ {
				check(v.List().Get(i))
			}
		} else {
			check(v)
		}
		return found == ""
	})
	return strings.TrimSuffix(found, ".")
}
