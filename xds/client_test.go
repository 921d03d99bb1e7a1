package xds

import (
	"log/slog"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// handle ACKs what its watchers apply with the response's version and
// NACKs, keeping the version it has, what they reject or a response that
// names a resource twice.
func TestHandleAcksAndNacks(t *testing.T) {
	c := newClient("x", false, nil, &corev3.Node{Id: "n"}, slog.New(slog.DiscardHandler))
	var applied []string
	w := &watch{id: 1, name: "r", apply: func(version string, res []proto.Message) error {
		applied = append(applied, version)
		return nil
	}}
	c.types[RouteType] = &typeState{url: RouteType, named: map[string]map[uint64]*watch{"r": {1: w}}, wildcard: map[uint64]*watch{}}
	rc, _ := anypb.New(&routev3.RouteConfiguration{Name: "r"})
	ack := c.handle(&discoveryv3.DiscoveryResponse{TypeUrl: RouteType, VersionInfo: "1", Nonce: "a", Resources: []*anypb.Any{rc}})
	if ack.GetErrorDetail() != nil || ack.GetVersionInfo() != "1" || ack.GetResponseNonce() != "a" || len(applied) != 1 {
		t.Fatalf("ACK %v, applied %v", ack, applied)
	}
	nack := c.handle(&discoveryv3.DiscoveryResponse{TypeUrl: RouteType, VersionInfo: "2", Nonce: "b", Resources: []*anypb.Any{rc, rc}})
	if nack.GetErrorDetail() == nil || !strings.Contains(nack.GetErrorDetail().GetMessage(), "twice") || nack.GetVersionInfo() != "1" || len(applied) != 1 {
		t.Fatalf("NACK %v, applied %v: want the duplicate refused and version 1 kept", nack, applied)
	}
}
