// Package xds makes metaproxy a client of xDS management servers: routes
// over RDS as Aeraki's control plane sends them, clusters over CDS and
// endpoints over EDS, from istiod or any go-control-plane server, swapped
// into running listeners without dropping a connection.
//
// A Pool holds the process's clients, one per management server, shared
// by every listener (and, in the Envoy plugin, every listener
// configuration). Hosts give it what their configuration says about
// management servers (Configure) and attach listeners to it: WatchRoutes
// for a MetaProtocolProxy's rds, WatchClusters for dynamic_resources'
// cds_config, and Discovery as the cluster manager's endpoint source for
// clusters of type EDS.
package xds

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/config"
)

// Pool is a process's xDS clients.
type Pool struct {
	log *slog.Logger

	mu      sync.Mutex
	node    *corev3.Node
	servers map[string]cluster.Config // gRPC clusters by name
	ads     *cluster.ConfigSource     // dynamic_resources.ads_config; nil: none
	clients map[string]*Client

	adminCfg *config.EnvoyAdmin // the plugin's Envoy admin endpoint source; nil: none
	admin    *adminSource       // started on first use

	dumps dumps
}

// NewPool returns a pool with no management server; log may be nil.
func NewPool(log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{log: log, node: &corev3.Node{}, servers: map[string]cluster.Config{}, clients: map[string]*Client{}}
}

// Configure learns a configuration's management servers: the node
// identity sent to them, the bootstrap clusters that reach them, and the
// ADS server (nil for none). Later configurations add to, and replace by
// name, what earlier ones said; clients already running keep their server.
func (p *Pool) Configure(node *corev3.Node, servers []cluster.Config, ads *cluster.ConfigSource) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if node != nil {
		p.node = node
	}
	for _, s := range servers {
		p.servers[s.Name] = s
	}
	if ads != nil {
		p.ads = ads
	}
}

// ConfigureEnvoyAdmin names the Envoy admin endpoint source (the first
// configuration that names one wins: a process has one Envoy).
func (p *Pool) ConfigureEnvoyAdmin(a *config.EnvoyAdmin) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a != nil && p.adminCfg == nil {
		p.adminCfg = a
	}
}

// ParseNode reads a bootstrap node (Envoy's schema, JSON); empty is none.
func ParseNode(raw json.RawMessage) (*corev3.Node, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	n := &corev3.Node{}
	if err := protojson.Unmarshal(raw, n); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return n, nil
}

// client returns the client of src's management server, started on first
// use.
func (p *Pool) client(src cluster.ConfigSource) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name, ads := src.Cluster, false
	if src.ADS {
		if p.ads == nil {
			return nil, fmt.Errorf("xds: a config_source is ads, but there is no dynamic_resources.ads_config")
		}
		name, ads = p.ads.Cluster, true
	}
	cfg, ok := p.servers[name]
	if !ok {
		return nil, fmt.Errorf("xds: no management-server cluster %q (a static cluster with http2_protocol_options)", name)
	}
	k := fmt.Sprintf("%s|%v|%s", name, ads, p.node.GetId())
	if c := p.clients[k]; c != nil {
		return c, nil
	}
	conn, err := dial(cfg)
	if err != nil {
		return nil, err
	}
	c := newClient(name, ads, conn, p.node, p.log)
	p.clients[k] = c
	return c, nil
}

// Close stops every client.
func (p *Pool) Close() {
	p.mu.Lock()
	cs := p.clients
	p.clients = map[string]*Client{}
	admin := p.admin
	p.admin = nil
	p.mu.Unlock()
	if admin != nil {
		admin.stop()
	}
	for _, c := range cs {
		c.Close()
	}
}
