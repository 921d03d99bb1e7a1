package xds

import (
	"context"
	"fmt"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
)

// stream is one state-of-the-world xDS stream of a Client: the ADS stream
// carrying every type, or the stream of one type's own service. It lives
// for the client's life, reopening the gRPC stream after each break.
type stream struct {
	c       *Client
	typeURL string // "" for ADS
	dirty   map[string]bool
	wake    chan struct{}
}

func newStream(c *Client, typeURL string) *stream {
	return &stream{c: c, typeURL: typeURL, dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

type sotw interface {
	Send(*discoveryv3.DiscoveryRequest) error
	Recv() (*discoveryv3.DiscoveryResponse, error)
}

// resubscribe tells the stream that typeURL's resource names changed.
func (st *stream) resubscribe(typeURL string) {
	st.c.mu.Lock()
	st.dirty[typeURL] = true
	st.c.mu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// run keeps the stream open until the client closes, backing off between
// attempts: 500 ms doubling to 30 s, jittered, reset once a stream has
// delivered a response.
func (st *stream) run() {
	defer st.c.wg.Done()
	failures := 0
	for st.c.ctx.Err() == nil {
		if st.once() {
			failures = 0
		}
		wait := jitter(min(backoffBase<<min(failures, 10), backoffMax))
		failures++
		select {
		case <-st.c.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (st *stream) open(ctx context.Context) (sotw, error) {
	conn := st.c.conn
	switch st.typeURL {
	case "":
		return discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	case RouteType:
		return routeservice.NewRouteDiscoveryServiceClient(conn).StreamRoutes(ctx)
	case ClusterType:
		return clusterservice.NewClusterDiscoveryServiceClient(conn).StreamClusters(ctx)
	case EndpointType:
		return endpointservice.NewEndpointDiscoveryServiceClient(conn).StreamEndpoints(ctx)
	}
	return nil, fmt.Errorf("no xDS service for %s", st.typeURL)
}

// once opens the gRPC stream, subscribes to everything the client watches
// on it, and serves responses until the stream breaks. It reports whether
// a response arrived.
func (st *stream) once() (got bool) {
	c := st.c
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	s, err := st.open(ctx)
	if err != nil {
		c.log.Warn("xDS stream failed to open", "type", st.typeURL, "err", err)
		return false
	}
	nonces := map[string]string{}
	c.mu.Lock()
	var first []*discoveryv3.DiscoveryRequest
	for url, ts := range c.types {
		if c.streamKey(url) == st.typeURL {
			first = append(first, c.request(ts, "", nil))
		}
	}
	clear(st.dirty)
	c.mu.Unlock()
	for _, r := range first {
		if err := s.Send(r); err != nil {
			c.log.Warn("xDS stream broke", "type", st.typeURL, "err", err)
			return false
		}
	}
	resps := make(chan *discoveryv3.DiscoveryResponse)
	broke := make(chan error, 1)
	go func() {
		for {
			r, err := s.Recv()
			if err != nil {
				broke <- err
				return
			}
			select {
			case resps <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var out []*discoveryv3.DiscoveryRequest
		select {
		case <-ctx.Done():
			return got
		case err := <-broke:
			if ctx.Err() == nil {
				c.log.Warn("xDS stream broke; reconnecting", "type", st.typeURL, "err", err)
			}
			return got
		case r := <-resps:
			got = true
			nonces[r.GetTypeUrl()] = r.GetNonce()
			if req := c.handle(r); req != nil {
				out = append(out, req)
			}
		case <-st.wake:
			c.mu.Lock()
			for url := range st.dirty {
				if ts := c.types[url]; ts != nil {
					out = append(out, c.request(ts, nonces[url], nil))
				}
			}
			clear(st.dirty)
			c.mu.Unlock()
		}
		for _, r := range out {
			if err := s.Send(r); err != nil {
				c.log.Warn("xDS stream broke; reconnecting", "type", st.typeURL, "err", err)
				return got
			}
		}
	}
}
