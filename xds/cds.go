package xds

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"

	"github.com/metaproxy/metaproxy/cluster"
)

// ClusterSink is a listener's engine as CDS updates it (proxy.Server).
type ClusterSink interface {
	SetClusters([]cluster.Config) error
}

// WatchClusters subscribes sink to every cluster src's management server
// has (CDS is state of the world: a cluster missing from an update is
// removed), given to sink with the static clusters of its configuration,
// which a dynamic cluster of the same name cannot replace. A bad update is
// NACKed and the listener keeps its clusters.
func (p *Pool) WatchClusters(src cluster.ConfigSource, static []cluster.Config, sink ClusterSink) (stop func(), err error) {
	c, err := p.client(src)
	if err != nil {
		return nil, fmt.Errorf("cds: %w", err)
	}
	names := map[string]bool{}
	for _, s := range static {
		names[s.Name] = true
	}
	return c.Watch(ClusterType, "", func(version string, res []proto.Message) error {
		cfgs := append([]cluster.Config(nil), static...)
		var errs []error
		for _, r := range res {
			pb, _ := r.(*clusterv3.Cluster)
			if names[pb.GetName()] {
				errs = append(errs, fmt.Errorf("cds: cluster %q is a static cluster", pb.GetName()))
				continue
			}
			cfg, err := cluster.FromProto(pb)
			if err != nil {
				errs = append(errs, fmt.Errorf("cds: %w", err))
				continue
			}
			cfgs = append(cfgs, cfg)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		if err := sink.SetClusters(cfgs); err != nil {
			return err
		}
		p.dumps.clusters(version, res)
		return nil
	}), nil
}
