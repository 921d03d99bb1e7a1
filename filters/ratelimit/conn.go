package ratelimit

import (
	"sync"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/internal/grpcdial"
)

// One gRPC connection per rate-limit service, shared by every filter (and
// every listener) that calls it, not one per request: connections are
// kept by the service's endpoints and counted, and the last filter to let
// go closes it. Calls are balanced round robin over the endpoints.

type service struct {
	cc     *grpc.ClientConn
	client rlsv3.RateLimitServiceClient
	refs   int
}

var services struct {
	mu sync.Mutex
	m  map[string]*service
}

// acquire returns the shared client of cluster c's endpoints.
func acquire(c cluster.Config) (*service, string, error) {
	addrs, key, err := grpcdial.Addrs(c)
	if err != nil {
		return nil, "", err
	}
	services.mu.Lock()
	defer services.mu.Unlock()
	if s := services.m[key]; s != nil {
		s.refs++
		return s, key, nil
	}
	cc, err := grpcdial.Dial(c.Name, addrs)
	if err != nil {
		return nil, "", err
	}
	s := &service{cc: cc, client: rlsv3.NewRateLimitServiceClient(cc), refs: 1}
	if services.m == nil {
		services.m = map[string]*service{}
	}
	services.m[key] = s
	return s, key, nil
}

// release lets go of the service acquired under key.
func release(key string) {
	services.mu.Lock()
	s := services.m[key]
	if s == nil {
		services.mu.Unlock()
		return
	}
	s.refs--
	last := s.refs == 0
	if last {
		delete(services.m, key)
	}
	services.mu.Unlock()
	if last {
		s.cc.Close()
	}
}
