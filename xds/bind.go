package xds

import (
	"github.com/metaproxy/metaproxy/config"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/proxy"
)

// Bind attaches a listener's engine to the management servers its
// configuration names: RDS for its routes, CDS (x.CDS) or Envoy's own
// clusters (x.EnvoyAdmin) beside the static ones. stop detaches it; call it before closing srv.
func (p *Pool) Bind(l *config.Listener, x *config.XDS, srv *proxy.Server) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	if x.CDS != nil {
		s, err := p.WatchClusters(*x.CDS, l.Proxy.Clusters, srv)
		if err != nil {
			return nil, err
		}
		stops = append(stops, s)
	}
	if x.EnvoyAdmin != nil {
		s, err := p.WatchEnvoyClusters(l.Proxy.Clusters, srv)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, s)
	}
	if l.RDS != nil {
		stats := srv.FilterStats()
		if stats == nil {
			stats = filter.NewStats()
		}
		s, err := p.WatchRoutes(l.RDS, l.Proxy.StatPrefix, srv, stats)
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stop, nil
}
