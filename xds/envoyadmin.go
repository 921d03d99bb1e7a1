package xds

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/config"
)

// The plugin's other endpoint source (config.EnvoyAdmin): Envoy's own
// clusters, read from Envoy's local admin API (GET /clusters?format=json)
// on an interval. In Istio, that is exactly the clusters and endpoints
// istiod gave Envoy, with Envoy's view of their health, without a second
// xDS stream to istiod.

// adminSource polls one Envoy admin and hands what changed to its
// subscribers.
type adminSource struct {
	cfg  config.EnvoyAdmin
	log  func(msg string, args ...any)
	stop context.CancelFunc

	mu     sync.Mutex
	hosts  map[string]*endpointv3.ClusterLoadAssignment // by cluster name, from the last good poll
	polled bool
	seq    uint64
	subs   map[uint64]func(map[string]*endpointv3.ClusterLoadAssignment)
}

func (p *Pool) envoyAdmin() *adminSource {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.admin == nil && p.adminCfg != nil {
		ctx, cancel := context.WithCancel(context.Background())
		a := &adminSource{cfg: *p.adminCfg, log: p.log.Warn, stop: cancel, hosts: map[string]*endpointv3.ClusterLoadAssignment{},
			subs: map[uint64]func(map[string]*endpointv3.ClusterLoadAssignment){}}
		if a.cfg.Interval <= 0 {
			a.cfg.Interval = config.DefaultEnvoyAdminInterval
		}
		p.admin = a
		go a.run(ctx)
	}
	return p.admin
}

// subscribe calls fn with every poll's clusters that changed (at once with
// the last, if there was one), one call at a time; cancel stops it.
func (a *adminSource) subscribe(f func(map[string]*endpointv3.ClusterLoadAssignment)) (cancel func()) {
	var one sync.Mutex
	fn := func(h map[string]*endpointv3.ClusterLoadAssignment) {
		one.Lock()
		defer one.Unlock()
		f(h)
	}
	a.mu.Lock()
	a.seq++
	id := a.seq
	a.subs[id] = fn
	hosts, polled := a.hosts, a.polled
	a.mu.Unlock()
	if polled {
		fn(hosts)
	}
	return func() {
		a.mu.Lock()
		delete(a.subs, id)
		a.mu.Unlock()
	}
}

func (a *adminSource) run(ctx context.Context) {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		hosts, err := a.poll(ctx)
		if err != nil {
			a.log("envoy admin: cannot read Envoy's clusters; keeping the last ones", "address", a.cfg.Address, "err", err)
		} else {
			a.mu.Lock()
			changed := !a.polled || !sameHosts(a.hosts, hosts)
			a.hosts, a.polled = hosts, true
			subs := make([]func(map[string]*endpointv3.ClusterLoadAssignment), 0, len(a.subs))
			for _, id := range slices.Sorted(maps.Keys(a.subs)) {
				subs = append(subs, a.subs[id])
			}
			a.mu.Unlock()
			if changed {
				for _, fn := range subs {
					fn(hosts)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poll reads Envoy's clusters as load assignments: each host with its
// weight, priority and locality; hosts Envoy marks unhealthy, draining,
// timed out, or failing active health checks or outlier detection are
// left out, as Envoy would not pick them.
func (a *adminSource) poll(ctx context.Context) (map[string]*endpointv3.ClusterLoadAssignment, error) {
	ctx, cancel := context.WithTimeout(ctx, max(a.cfg.Interval, 2*time.Second))
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.cfg.Address+"/clusters?format=json", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /clusters?format=json: %s", resp.Status)
	}
	var cs adminv3.Clusters
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, &cs); err != nil {
		return nil, fmt.Errorf("/clusters?format=json: %w", err)
	}
	out := make(map[string]*endpointv3.ClusterLoadAssignment, len(cs.GetClusterStatuses()))
	for _, c := range cs.GetClusterStatuses() {
		la := &endpointv3.ClusterLoadAssignment{ClusterName: c.GetName()}
		for _, h := range c.GetHostStatuses() {
			if h.GetAddress().GetSocketAddress() == nil || !usable(h.GetHealthStatus()) {
				continue
			}
			w := max(h.GetWeight(), 1)
			la.Endpoints = append(la.Endpoints, &endpointv3.LocalityLbEndpoints{
				Locality: h.GetLocality(), Priority: h.GetPriority(),
				LbEndpoints: []*endpointv3.LbEndpoint{{LoadBalancingWeight: wrapperspb.UInt32(w),
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: h.GetAddress()}}}},
			})
		}
		out[c.GetName()] = la
	}
	return out, nil
}

func usable(h *adminv3.HostHealthStatus) bool {
	switch h.GetEdsHealthStatus() {
	case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
		return false
	}
	return !h.GetFailedActiveHealthCheck() && !h.GetFailedOutlierCheck() && !h.GetPendingActiveHc()
}

func sameHosts(a, b map[string]*endpointv3.ClusterLoadAssignment) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !proto.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// selfEndpoints feeds c, an EDS cluster whose eds_config is self (or
// unset), from Envoy's admin; nil when no admin source is configured.
func (p *Pool) selfEndpoints(c *cluster.Cluster) (stop func()) {
	a := p.envoyAdmin()
	if a == nil {
		p.log.Error("eds: the cluster's eds_config is self, but plugin_config has no envoy_admin: it gets no endpoints", "cluster", c.Name())
		return nil
	}
	name := c.Config().EDS.ServiceName
	var last *endpointv3.ClusterLoadAssignment
	return a.subscribe(func(all map[string]*endpointv3.ClusterLoadAssignment) {
		la := all[name]
		if la == nil || proto.Equal(la, last) {
			return
		}
		last = la
		eps, err := cluster.EndpointsFromProto(la)
		if err == nil {
			err = c.Update(eps)
		}
		if err != nil {
			p.log.Warn("envoy admin: endpoints not applied", "cluster", name, "err", err)
		}
	})
}

// WatchEnvoyClusters gives sink, beside the static clusters, one cluster
// per cluster of Envoy's (round robin, Envoy's defaults; endpoints from
// the admin, see selfEndpoints), so that routes may name Envoy's clusters
// (Istio's outbound|20880||svc...) without declaring them. A static
// cluster of the same name wins: declare one (type EDS, eds_cluster_config
// {}) to choose its load balancing.
func (p *Pool) WatchEnvoyClusters(static []cluster.Config, sink ClusterSink) (stop func(), err error) {
	a := p.envoyAdmin()
	if a == nil {
		return nil, fmt.Errorf("envoy_admin is not configured")
	}
	own := map[string]bool{}
	for _, s := range static {
		own[s.Name] = true
	}
	var names []string
	return a.subscribe(func(all map[string]*endpointv3.ClusterLoadAssignment) {
		next := slices.Sorted(maps.Keys(all))
		if slices.Equal(next, names) {
			return // endpoint changes reach the clusters themselves
		}
		cfgs := append([]cluster.Config(nil), static...)
		for _, n := range next {
			if own[n] {
				continue
			}
			cfg, err := cluster.FromProto(&clusterv3.Cluster{Name: n, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}}})
			if err != nil {
				p.log.Warn("envoy admin: cluster skipped", "cluster", n, "err", err)
				continue
			}
			cfgs = append(cfgs, cfg)
		}
		if err := sink.SetClusters(cfgs); err != nil {
			p.log.Warn("envoy admin: clusters not applied", "err", err)
			return
		}
		names = next
	}), nil
}
