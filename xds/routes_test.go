package xds

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// aerakiRoutes is a RouteConfiguration as Aeraki's control plane builds
// it for a MetaRouter: one virtual host "dummy", prefix "/" plus headers.
func aerakiRoutes() *routev3.RouteConfiguration {
	exact := func(k, v string) *routev3.HeaderMatcher {
		return &routev3.HeaderMatcher{Name: k, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: v}}}}
	}
	return &routev3.RouteConfiguration{Name: "svc_20880", VirtualHosts: []*routev3.VirtualHost{{
		Name: "dummy", Domains: []string{"*"},
		Routes: []*routev3.Route{
			{Name: "v1", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
				Headers: []*routev3.HeaderMatcher{exact("method", "sayHello")}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "outbound|20880|v1|svc"},
					HashPolicy:       []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: "user"}}}},
					RequestMirrorPolicies: []*routev3.RouteAction_RequestMirrorPolicy{{Cluster: "outbound|20880|v2|svc",
						RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: 50}}}},
					Timeout:     durationpb.New(2e9),
					RetryPolicy: &routev3.RetryPolicy{RetryOn: "reset", NumRetries: wrapperspb.UInt32(2)},
				}},
				RequestHeadersToAdd:  []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "foo", Value: "bar"}}},
				ResponseHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "served-by", Value: "v1"}}},
			},
			{Name: "split", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_WeightedClusters{
					WeightedClusters: &routev3.WeightedCluster{Clusters: []*routev3.WeightedCluster_ClusterWeight{
						{Name: "outbound|20880|v1|svc", Weight: wrapperspb.UInt32(20)},
						{Name: "outbound|20880|v2|svc", Weight: wrapperspb.UInt32(80)}}}}}}},
		},
	}}}
}

func TestMetaRoutesAsAeraki(t *testing.T) {
	mrc, err := MetaRoutes(aerakiRoutes())
	if err != nil {
		t.Fatal(err)
	}
	tbl, _, err := router.Compile(mrc)
	if err != nil {
		t.Fatal(err)
	}
	var md codec.Metadata
	md.Set("method", "sayHello")
	r := tbl.Match(&md)
	if r == nil || r.Name != "v1" || r.Cluster != "outbound|20880|v1|svc" {
		t.Fatalf("sayHello matched %+v", r)
	}
	if len(r.HashPolicy) != 1 || r.HashPolicy[0] != "user" || len(r.Mirrors) != 1 || r.Timeout != 2e9 || r.Retry.NumRetries != 2 {
		t.Fatalf("route v1 lost its hash policy, mirror, timeout or retries: %+v", r)
	}
	if len(r.RequestMutation) != 1 || r.RequestMutation[0] != (codec.KV{Key: "foo", Value: "bar"}) ||
		len(r.ResponseMutation) != 1 || r.ResponseMutation[0].Value != "v1" {
		t.Fatalf("mutations: %+v %+v", r.RequestMutation, r.ResponseMutation)
	}
	md.Set("method", "other")
	if r := tbl.Match(&md); r == nil || r.Name != "split" || len(r.Weighted) != 2 {
		t.Fatalf("other matched %+v", r)
	}
}

func TestMetaRoutesRefusesWhatAMetaRouteCannotSay(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*routev3.RouteConfiguration)
		want string
	}{
		"two virtual hosts": {func(rc *routev3.RouteConfiguration) { rc.VirtualHosts = append(rc.VirtualHosts, rc.VirtualHosts[0]) }, "2 virtual hosts"},
		"redirect": {func(rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].Routes[0].Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{}}
		}, "only route actions"},
		"weighted cluster with metadata_match": {func(rc *routev3.RouteConfiguration) {
			wc := rc.VirtualHosts[0].Routes[1].GetRoute().GetWeightedClusters()
			wc.Clusters[0].MetadataMatch = &corev3.Metadata{}
			wc.Clusters[0].HostRewriteSpecifier = &routev3.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: "x"}
		}, "is not supported"},
		"cookie hash policy": {func(rc *routev3.RouteConfiguration) {
			rc.VirtualHosts[0].Routes[0].GetRoute().HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: "c"}}}}
		}, "only header hash policies"},
	} {
		t.Run(name, func(t *testing.T) {
			rc := aerakiRoutes()
			tc.edit(rc)
			if _, err := MetaRoutes(rc); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
