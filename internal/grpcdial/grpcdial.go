// Package grpcdial dials the services filters call over gRPC (a rate
// limit service, a trace collector): a cluster of the listener, reached
// from Go's own sockets, in the plugin too.
package grpcdial

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/metaproxy/metaproxy/cluster"
)

// Addrs returns c's endpoints as "host:port", and them joined as a key
// that names the service (for sharing one connection per service).
func Addrs(c cluster.Config) (addrs []string, key string, err error) {
	for _, ep := range c.Endpoints {
		addrs = append(addrs, net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)))
	}
	if len(addrs) == 0 {
		return nil, "", fmt.Errorf("cluster %q has no endpoints", c.Name)
	}
	return addrs, strings.Join(addrs, ","), nil
}

// Dial returns a plaintext client connection balanced round robin over
// addrs (the endpoints of cluster name), connecting at once.
func Dial(name string, addrs []string) (*grpc.ClientConn, error) {
	r := manual.NewBuilderWithScheme("metaproxy")
	state := resolver.State{}
	for _, a := range addrs {
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a})
	}
	r.InitialState(state)
	cc, err := grpc.NewClient(r.Scheme()+":///"+name,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", name, err)
	}
	cc.Connect()
	return cc, nil
}
