// Package config turns user configuration into engine configuration:
// Aeraki's MetaProtocolProxy plus Envoy-schema clusters become a
// proxy.Config, whether they come from an Envoy bootstrap file (the
// standalone proxy) or from the golang filter's plugin_config (the Envoy
// plugin). Everything is validated here; requests never parse config.
package config

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/v1alpha"
	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filters/accesslog"
	"github.com/metaproxy/metaproxy/filters/tracing"
	"github.com/metaproxy/metaproxy/proxy"
	"github.com/metaproxy/metaproxy/router"
)

// Listener is one configured listener.
type Listener struct {
	// Name is the Envoy listener name (or the stat prefix in the plugin).
	Name string
	// Address is "host:port" to listen on (standalone only).
	Address string
	// Proxy is the compiled engine configuration.
	Proxy proxy.Config
	// Warnings name configured features that are accepted but not run yet,
	// one line each.
	Warnings []string
	// RDS is the MetaProtocolProxy's rds: its routes come from a management
	// server (nil: they are in the configuration).
	RDS *v1alpha.Rds
	// XDS is what plugin_config says about management servers (plugin
	// only; the standalone proxy's is the Bootstrap's).
	XDS XDS
	// MetricsAddress is plugin_config's metrics_address (plugin only):
	// where the plugin serves its Prometheus metrics, since Envoy's admin
	// cannot show them. Empty: not served.
	MetricsAddress string
}

// Build compiles a MetaProtocolProxy and the clusters of its
// configuration: those it may route to, and those that reach management
// servers, which filters may name (a rate-limit service) but requests are
// never routed to. filterEnv is given to filter factories.
func Build(p *v1alpha.MetaProtocolProxy, clusters []cluster.Config, filterEnv filter.Env) (proxy.Config, []string, error) {
	var warn []string
	routed, _ := splitServers(clusters)
	cfg := proxy.Config{
		StatPrefix:   p.GetStatPrefix(),
		Protocol:     api.ProtocolName(p),
		Multiplexing: p.GetProtocol().GetMultiplexing(),
		Clusters:     routed,
	}
	cd := api.CodecOf(p)
	if cd == nil || cd.GetName() == "" {
		return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: no codec: set protocol.codec.name", p.GetStatPrefix())
	}
	proto, ok := codec.Lookup(cd.GetName())
	if !ok {
		return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: unknown codec %q (known: %s)", p.GetStatPrefix(), cd.GetName(), strings.Join(codec.Names(), ", "))
	}
	codecJSON, err := api.ConfigJSON(cd.GetConfig())
	if err != nil {
		return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: codec %q config: %w", p.GetStatPrefix(), cd.GetName(), err)
	}
	if cfg.Codec, err = proto.New(codecJSON); err != nil {
		return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: codec %q: %w", p.GetStatPrefix(), cd.GetName(), err)
	}
	if cfg.Protocol == "" {
		cfg.Protocol = proto.Name
	}
	base := filterEnv
	if base.Stats == nil {
		base.Stats = filter.NewStats() // the listener's
	}
	reg := prometheus.NewRegistry() // the listener's
	base.Metrics, cfg.Metrics = reg, reg
	base = base.WithDefaults()
	base.StatPrefix = p.GetStatPrefix()
	base.Protocol = cfg.Protocol
	if hc, ok := cfg.Codec.NewCodec().(codec.HeaderCarrier); ok {
		base.CarriesHeaders = hc.CarriesHeaders
	}
	base.Cluster = func(name string) (cluster.Config, bool) {
		for _, c := range clusters {
			if c.Name == name {
				return c, true
			}
		}
		return cluster.Config{}, false
	}
	cfg.FilterStats = base.Stats
	fs := p.GetMetaProtocolFilters()
	for i, f := range fs {
		if filter.IsRouter(f.GetName()) {
			if i != len(fs)-1 {
				return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: meta_protocol_filters[%d]: the router must be the last filter", p.GetStatPrefix(), i)
			}
			continue
		}
		def, ok := filter.Lookup(f.GetName())
		if !ok {
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: meta_protocol_filters[%d]: unknown filter %q (known: %s)", p.GetStatPrefix(), i, f.GetName(), strings.Join(filter.Names(), ", "))
		}
		js, err := api.ConfigJSON(f.GetConfig())
		if err != nil {
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: filter %q config: %w", p.GetStatPrefix(), f.GetName(), err)
		}
		env := base
		env.Logger = env.Logger.With("filter", def.Name)
		flt, err := def.New(js, env)
		if err != nil {
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: filter %q: %w", p.GetStatPrefix(), f.GetName(), err)
		}
		cfg.Filters = append(cfg.Filters, filter.Named{Name: def.Name, Filter: flt})
	}
	if len(fs) > 0 && !filter.IsRouter(fs[len(fs)-1].GetName()) {
		warn = append(warn, fmt.Sprintf("meta_protocol_proxy %q: meta_protocol_filters does not end with the router; the router runs after the last filter", p.GetStatPrefix()))
	}
	switch {
	case p.GetRds() != nil: // the host subscribes (xds.Bind); no routes until they arrive
		if p.GetRds().GetRouteConfigName() == "" || p.GetRds().GetConfigSource() == nil {
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: rds needs config_source and route_config_name", p.GetStatPrefix())
		}
	case p.GetRouteConfig() != nil:
		t, w, err := router.Compile(p.GetRouteConfig())
		if err != nil {
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: %w", p.GetStatPrefix(), err)
		}
		cfg.Routes = t
		warn = append(warn, w...)
	}
	if d := p.GetIdleTimeout(); d != nil {
		cfg.IdleTimeout = d.AsDuration()
	}
	applyOverloadBounds(&cfg, p)
	if t := p.GetTracing(); t != nil { // the tracer goes first: it sees every request
		env := base
		env.Logger = env.Logger.With("filter", tracing.Name)
		tf, w, err := tracing.New(t, cfg.Protocol, env)
		if err != nil {
			filter.NewChain(cfg.Filters, nil).Close() // let go of what the filters hold
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: tracing.%w", p.GetStatPrefix(), err)
		}
		if w != "" {
			warn = append(warn, fmt.Sprintf("meta_protocol_proxy %q: %s", p.GetStatPrefix(), w))
		}
		if tf != nil {
			cfg.Filters = append([]filter.Named{{Name: tracing.Name, Filter: tf}}, cfg.Filters...)
		}
	}
	if len(p.GetAccessLog()) > 0 {
		env := base
		env.Logger = env.Logger.With("filter", accesslog.Name)
		al, err := accesslog.New(p.GetAccessLog(), cfg.Protocol, env)
		if err != nil {
			filter.NewChain(cfg.Filters, nil).Close() // let go of what the filters hold
			return cfg, nil, fmt.Errorf("meta_protocol_proxy %q: %w", p.GetStatPrefix(), err)
		}
		cfg.Filters = append(cfg.Filters, filter.Named{Name: accesslog.Name, Filter: al}) // closed with the chain
	}
	return cfg, warn, nil
}

// ParsePluginConfig parses the value of the Envoy golang filter's
// plugin_config TypedStruct: a MetaProtocolProxy's fields plus a "clusters"
// list in Envoy's cluster schema (the clusters the plugin routes to; Envoy
// itself only knows the plainText cluster).
func ParsePluginConfig(value []byte, filterEnv filter.Env) (*Listener, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(value, &doc); err != nil {
		return nil, fmt.Errorf("plugin_config: %w", err)
	}
	var rawClusters []json.RawMessage
	if c, ok := doc["clusters"]; ok {
		if err := json.Unmarshal(c, &rawClusters); err != nil {
			return nil, fmt.Errorf("plugin_config: clusters: %w", err)
		}
		delete(doc, "clusters")
	}
	// node: the node's identity in Envoy's bootstrap node schema, for
	// metadata_exchange and istio_stats (Envoy keeps its own node from the
	// plugin).
	if n, ok := doc["node"]; ok {
		filterEnv.Node = n
		delete(doc, "node")
	}
	var x XDS
	x.Node = filterEnv.Node
	if d, ok := doc["dynamic_resources"]; ok {
		if err := parseDynamic(d, &x); err != nil {
			return nil, fmt.Errorf("plugin_config: %w", err)
		}
		delete(doc, "dynamic_resources")
	}
	if a, ok := doc["envoy_admin"]; ok {
		var err error
		if x.EnvoyAdmin, err = parseEnvoyAdmin(a); err != nil {
			return nil, fmt.Errorf("plugin_config: %w", err)
		}
		delete(doc, "envoy_admin")
	}
	var metricsAddress string
	if m, ok := doc["metrics_address"]; ok {
		if err := json.Unmarshal(m, &metricsAddress); err != nil {
			return nil, fmt.Errorf("plugin_config: metrics_address: not a string: %s", m)
		}
		if _, _, err := net.SplitHostPort(metricsAddress); err != nil {
			return nil, fmt.Errorf("plugin_config: metrics_address: %w", err)
		}
		delete(doc, "metrics_address")
	}
	rest, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("plugin_config: %w", err)
	}
	p, err := api.ParseProxy(rest)
	if err != nil {
		return nil, fmt.Errorf("plugin_config: %w", err)
	}
	clusters, warn, err := parseClusters(rawClusters)
	if err != nil {
		return nil, fmt.Errorf("plugin_config: %w", err)
	}
	cfg, w, err := Build(p, clusters, filterEnv)
	if err != nil {
		return nil, fmt.Errorf("plugin_config: %w", err)
	}
	cfg.DynamicClusters = x.CDS != nil || x.EnvoyAdmin != nil
	_, x.Servers = splitServers(clusters)
	return &Listener{Name: p.GetStatPrefix(), Proxy: cfg, Warnings: append(warn, w...), MetricsAddress: metricsAddress, RDS: p.GetRds(), XDS: x}, nil
}

func parseClusters(raws []json.RawMessage) ([]cluster.Config, []string, error) {
	var out []cluster.Config
	var warn []string
	for i, raw := range raws {
		c, err := cluster.ParseConfig(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("clusters[%d]: %w", i, err)
		}
		warn = append(warn, c.Warnings...)
		out = append(out, c)
	}
	return out, warn, nil
}

// applyOverloadBounds sets the request timeout and the bounds on requests in
// flight and buffered bytes: the configured value, or metaproxy's default
// when unset (zero disables each).
func applyOverloadBounds(cfg *proxy.Config, p *v1alpha.MetaProtocolProxy) {
	cfg.RequestTimeout = proxy.DefaultRequestTimeout
	if d := p.GetRequestTimeout(); d != nil {
		cfg.RequestTimeout = d.AsDuration()
	}
	cfg.FrameReceiveTimeout = proxy.DefaultFrameReceiveTimeout
	if d := p.GetFrameReceiveTimeout(); d != nil {
		cfg.FrameReceiveTimeout = d.AsDuration()
	}
	cfg.MaxConnections = int(p.GetMaxConnections().GetValue())
	cfg.MaxActiveRequestsPerConnection = proxy.DefaultMaxActiveRequestsPerConnection
	if v := p.GetMaxActiveRequestsPerConnection(); v != nil {
		cfg.MaxActiveRequestsPerConnection = int(v.GetValue())
	}
	cfg.MaxActiveRequests = proxy.DefaultMaxActiveRequests
	if v := p.GetMaxActiveRequests(); v != nil {
		cfg.MaxActiveRequests = int(v.GetValue())
	}
	cfg.MaxBufferedBytesTotal = proxy.DefaultMaxBufferedBytesTotal
	if v := p.GetMaxBufferedBytes(); v != nil {
		cfg.MaxBufferedBytesTotal = int64(min(v.GetValue(), 1<<62))
	}
}
