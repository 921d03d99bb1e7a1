package proxy

import (
	"fmt"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
)

// A listener's clusters: those of its configuration, and, when a control
// plane drives it (CDS), those SetClusters installs under live traffic.
// Clusters are held from the process's cluster manager, which shares a
// cluster by content between listeners; a snapshot holds the refs of the
// clusters of its time, so a swap never changes the cluster of a request
// already routed.

// SetClusters replaces the listener's clusters with cfgs. A cluster whose
// configuration did not change keeps its Cluster (hosts, balancer state,
// connections); a new or changed one is built; a removed or replaced one
// stops taking requests now, its idle connections close and busy ones after
// their last answer. On error nothing changes.
func (s *Server) SetClusters(cfgs []cluster.Config) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	if s.closed.Load() {
		return fmt.Errorf("proxy: SetClusters on a closed server")
	}
	refs, err := s.acquire(cfgs, s.refs)
	if err != nil {
		return err
	}
	old := s.refs
	s.refs = refs
	cur := s.snap.Load()
	s.snap.Store(&snapshot{chain: cur.chain, routes: cur.routes, clusters: refs, tick: cur.tick})
	var gone []*clusterRef
	for name, ref := range old {
		if refs[name] != ref {
			gone = append(gone, ref)
		}
	}
	for _, ref := range gone {
		ref.gone.Store(true) // before the drain: Server.pool
		ref.unwatch()
		s.drainHosts(ref.cl.Hosts())
		s.mgr.Release(ref.cl)
	}
	return nil
}

// acquire returns the refs of cfgs, keeping those of old whose cluster is
// unchanged and acquiring the others from the manager (watched for host
// removals). On error it releases what it acquired and returns an error.
func (s *Server) acquire(cfgs []cluster.Config, old map[string]*clusterRef) (map[string]*clusterRef, error) {
	refs := make(map[string]*clusterRef, len(cfgs))
	fresh := map[string]*clusterRef{}
	fail := func(err error) (map[string]*clusterRef, error) {
		s.releaseAll(fresh)
		return nil, err
	}
	for _, cfg := range cfgs {
		if refs[cfg.Name] != nil {
			return fail(fmt.Errorf("proxy: cluster %q is defined twice", cfg.Name))
		}
		cfg, err := s.withProbe(cfg)
		if err != nil {
			return fail(err)
		}
		if ref := old[cfg.Name]; ref != nil && ref.cl.Same(cfg) {
			refs[cfg.Name] = ref
			continue
		}
		cl, err := s.mgr.Acquire(cfg)
		if err != nil {
			return fail(fmt.Errorf("proxy: %w", err))
		}
		ref := &clusterRef{cl: cl}
		ref.unwatch = cl.Watch(s.drainHosts)
		refs[cfg.Name] = ref
		fresh[cfg.Name] = ref
	}
	return refs, nil
}

// releaseAll lets go of the clusters of refs.
func (s *Server) releaseAll(refs map[string]*clusterRef) {
	for _, ref := range refs {
		if ref.unwatch != nil {
			ref.unwatch()
		}
		s.mgr.Release(ref.cl)
	}
}

// withProbe gives the listener's codec to a cluster whose health check is
// the codec probe; a codec that cannot build probes is refused.
func (s *Server) withProbe(cfg cluster.Config) (cluster.Config, error) {
	hc := cfg.HealthCheck
	if hc == nil || !hc.Codec {
		return cfg, nil
	}
	if _, ok := s.cfg.Codec.NewCodec().(codec.Prober); !ok {
		return cfg, fmt.Errorf("proxy: cluster %q: custom_health_check %s: the %s codec has no protocol probe; use tcp_health_check",
			cfg.Name, cluster.HealthCheckCodecName, s.cfg.Protocol)
	}
	c := *hc
	c.Prober, c.ProberName = s.cfg.Codec, s.cfg.Protocol
	cfg.HealthCheck = &c
	return cfg, nil
}
