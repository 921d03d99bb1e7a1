package xds

import (
	"fmt"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/metaproxy/metaproxy/cluster"
)

// Discovery is the cluster manager's endpoint source
// (cluster.Manager.SetDiscovery): a cluster of type EDS whose eds_config
// names a management server gets its endpoints from a watch of its
// ClusterLoadAssignment, applied with Cluster.Update (which keeps the
// hosts that stay, with their state). Priorities, weights, health status
// and locality follow cluster.EndpointsFromProto. Other clusters get
// nothing (nil stop). A cluster whose eds_config is self (or unset) gets
// its endpoints from Envoy's admin (the plugin's envoy_admin source).
func (p *Pool) Discovery(c *cluster.Cluster) (stop func()) {
	cfg := c.Config()
	if cfg.Type != cluster.EDS || cfg.EDS == nil {
		return nil
	}
	if cfg.EDS.Source.Self {
		return p.selfEndpoints(c)
	}
	cl, err := p.client(cfg.EDS.Source)
	if err != nil {
		p.log.Error("eds: the cluster gets no endpoints", "cluster", cfg.Name, "err", err)
		return nil
	}
	name := cfg.EDS.ServiceName
	return cl.Watch(EndpointType, name, func(version string, res []proto.Message) error {
		if len(res) == 0 {
			return nil // an empty response removes nothing (EDS is not state of the world per name)
		}
		la, ok := res[0].(*endpointv3.ClusterLoadAssignment)
		if !ok {
			return fmt.Errorf("eds %q: not a ClusterLoadAssignment", name)
		}
		eps, err := cluster.EndpointsFromProto(la)
		if err != nil {
			return fmt.Errorf("eds %q: %w", name, err)
		}
		if err := c.Update(eps); err != nil {
			return err
		}
		p.dumps.endpoints(name, version, la)
		return nil
	})
}
