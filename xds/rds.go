package xds

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/api/v1alpha"
	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/router"
)

// RouteSink is a listener's engine as RDS updates it (proxy.Server).
type RouteSink interface {
	SetDiscoveredRoutes(*router.Table) error
}

// WatchRoutes subscribes sink to the route configuration rds names, on the
// management server its config_source says. Until the first routes
// arrive, sink keeps the routes it has (none: requests get the protocol's
// native no-route error). Each update is one RouteConfiguration of that
// name, converted as MetaRoutes converts it; an update without it counts
// update_empty and changes nothing; a bad one (or one carrying the name
// twice: see Client.handle) is NACKed and the last good routes stay. Stats, under stats (the listener's): <stat_prefix>.rds.<route_config_name>.
// config_reload, update_empty, config_reload_time_ms (Aeraki's), and
// update_attempt, update_rejected, init_fetch_timeout (Envoy's).
func (p *Pool) WatchRoutes(rds *v1alpha.Rds, statPrefix string, sink RouteSink, stats *filter.Stats) (stop func(), err error) {
	name := rds.GetRouteConfigName()
	if name == "" {
		return nil, fmt.Errorf("rds: route_config_name is required")
	}
	src, err := configSource(rds.GetConfigSource())
	if err != nil {
		return nil, fmt.Errorf("rds: config_source: %w", err)
	}
	c, err := p.client(src)
	if err != nil {
		return nil, fmt.Errorf("rds: %w", err)
	}
	prefix := statPrefix + ".rds." + name + "."
	reload, empty := stats.Counter(prefix+"config_reload"), stats.Counter(prefix+"update_empty")
	reloadTime := stats.Gauge(prefix + "config_reload_time_ms")
	attempt, rejected := stats.Counter(prefix+"update_attempt"), stats.Counter(prefix+"update_rejected")
	initTimeout := stats.Counter(prefix + "init_fetch_timeout")
	got := make(chan struct{})
	apply := func(version string, res []proto.Message) error {
		attempt.Inc()
		err := applyRoutes(name, res, sink)
		switch {
		case err != nil:
			rejected.Inc()
			return err
		case len(res) == 0:
			empty.Inc()
			return nil
		}
		reload.Inc()
		reloadTime.Set(time.Now().UnixMilli())
		p.dumps.routes(name, version, res[0])
		select {
		case <-got:
		default:
			close(got)
		}
		return nil
	}
	cancel := c.Watch(RouteType, name, apply)
	done := make(chan struct{})
	if d := src.InitialFetchTimeout; d > 0 {
		go func() {
			select {
			case <-got:
			case <-done:
			case <-time.After(d):
				initTimeout.Inc()
				p.log.Warn("rds: no routes within initial_fetch_timeout; requests get no-route errors until they arrive",
					"route_config_name", name, "initial_fetch_timeout", d)
			}
		}()
	}
	return func() { close(done); cancel() }, nil
}

// applyRoutes installs the one route configuration of an update.
func applyRoutes(name string, res []proto.Message, sink RouteSink) error {
	if len(res) == 0 {
		return nil
	}
	rc, ok := res[0].(*routev3.RouteConfiguration)
	if !ok || rc.GetName() != name {
		return fmt.Errorf("rds %q: the update carries route configuration %q", name, rc.GetName())
	}
	mrc, err := MetaRoutes(rc)
	if err != nil {
		return err
	}
	t, _, err := router.Compile(mrc)
	if err != nil {
		return err
	}
	return sink.SetDiscoveredRoutes(t)
}

// configSource converts the MetaProtocolProxy's ConfigSource (a
// wire-compatible mirror of Envoy's) to Envoy's, and parses it.
func configSource(cs *envoy.ConfigSource) (cluster.ConfigSource, error) {
	if cs == nil {
		return cluster.ConfigSource{}, fmt.Errorf("required")
	}
	pb := &corev3.ConfigSource{}
	if err := rewire(cs, pb); err != nil {
		return cluster.ConfigSource{}, err
	}
	return cluster.ParseConfigSource(pb)
}
