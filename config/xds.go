package config

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/metaproxy/metaproxy/cluster"
)

// XDS is what a configuration (a bootstrap, a plugin_config) says about
// the management servers that drive it.
type XDS struct {
	// Node is the node identity sent to them (Envoy's node schema).
	Node json.RawMessage
	// Servers are the clusters that reach management servers: the static
	// clusters declared as Envoy declares gRPC clusters (HTTP/2 protocol
	// options, or TLS, or a Unix socket). They are not routed to.
	Servers []cluster.Config
	// ADS is dynamic_resources.ads_config; nil for none.
	ADS *cluster.ConfigSource
	// CDS is dynamic_resources.cds_config; nil: the clusters are static.
	CDS *cluster.ConfigSource
	// EnvoyAdmin is plugin_config's envoy_admin: Envoy's own clusters and
	// endpoints, read from its admin API (plugin only); nil for none.
	EnvoyAdmin *EnvoyAdmin
}

// EnvoyAdmin is the plugin's Envoy admin endpoint source: plugin_config's
// envoy_admin {address, refresh_interval}.
type EnvoyAdmin struct {
	Address  string        // "127.0.0.1:15000", Envoy's admin
	Interval time.Duration // DefaultEnvoyAdminInterval when zero
}

// DefaultEnvoyAdminInterval is how often Envoy's clusters are read.
const DefaultEnvoyAdminInterval = 5 * time.Second

func parseEnvoyAdmin(raw json.RawMessage) (*EnvoyAdmin, error) {
	var a struct {
		Address         string          `json:"address"`
		RefreshInterval json.RawMessage `json:"refresh_interval"`
	}
	if err := strict(raw, &a); err != nil {
		return nil, fmt.Errorf("envoy_admin: %w", err)
	}
	if _, _, err := net.SplitHostPort(a.Address); err != nil {
		return nil, fmt.Errorf("envoy_admin: address: %w", err)
	}
	out := &EnvoyAdmin{Address: a.Address}
	if a.RefreshInterval != nil {
		d, err := cluster.ParseDuration(a.RefreshInterval)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("envoy_admin: refresh_interval: want a positive duration such as \"5s\"")
		}
		out.Interval = d
	}
	return out, nil
}

// Enabled reports whether anything comes from a management server.
func (x *XDS) Enabled() bool { return x.ADS != nil || x.CDS != nil || x.EnvoyAdmin != nil }

// parseDynamic reads dynamic_resources (Envoy's schema, strictly).
// lds_config is refused: listeners are the host's (the bootstrap's in the
// standalone proxy, Envoy's in the plugin).
func parseDynamic(raw json.RawMessage, x *XDS) error {
	if len(raw) == 0 {
		return nil
	}
	var dr bootstrapv3.Bootstrap_DynamicResources
	if err := protojson.Unmarshal(raw, &dr); err != nil {
		return fmt.Errorf("dynamic_resources: %w", err)
	}
	if dr.GetLdsConfig() != nil || dr.GetLdsResourcesLocator() != "" {
		return fmt.Errorf("dynamic_resources: lds_config is not supported: listeners come from the bootstrap (in Envoy, LDS is Envoy's own)")
	}
	if dr.GetCdsResourcesLocator() != "" || len(dr.GetAdsConfig().GetConfigValidators()) > 0 {
		return fmt.Errorf("dynamic_resources: xdstp resource locators and config_validators are not supported")
	}
	if a := dr.GetAdsConfig(); a != nil {
		src, err := cluster.ParseConfigSource(&corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: a}})
		if err != nil {
			return fmt.Errorf("dynamic_resources.ads_config: %w", err)
		}
		x.ADS = &src
	}
	if c := dr.GetCdsConfig(); c != nil {
		src, err := cluster.ParseConfigSource(c)
		if err != nil {
			return fmt.Errorf("dynamic_resources.cds_config: %w", err)
		}
		x.CDS = &src
		if src.ADS && x.ADS == nil {
			return fmt.Errorf("dynamic_resources.cds_config: ads, but there is no dynamic_resources.ads_config")
		}
	}
	return nil
}

// splitServers separates the clusters that reach management servers from
// those requests are routed to.
func splitServers(all []cluster.Config) (routed, servers []cluster.Config) {
	for _, c := range all {
		if isServer(c) {
			servers = append(servers, c)
		} else {
			routed = append(routed, c)
		}
	}
	return routed, servers
}

func isServer(c cluster.Config) bool {
	if c.HTTP2 || c.TLS != nil {
		return true
	}
	for _, ep := range c.Endpoints {
		if ep.Path != "" {
			return true
		}
	}
	return false
}
