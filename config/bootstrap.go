package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/filter"
	"sigs.k8s.io/yaml"
)

// Bootstrap is what the standalone proxy runs from an Envoy bootstrap file.
type Bootstrap struct {
	Listeners []*Listener
	// AdminAddress is "host:port" of the admin listener, or "".
	AdminAddress string
	// Warnings name configured features that are not run, one line each.
	Warnings []string
	// XDS is what the bootstrap says about management servers.
	XDS XDS
}

// FilterNames are the network filter names that carry a MetaProtocolProxy.
var FilterNames = []string{"aeraki.meta_protocol_proxy", "envoy.filters.network.meta_protocol_proxy"}

// Bootstrap sections metaproxy accepts without running them.
var ignoredTop = map[string]string{
	"layered_runtime":      "layered_runtime is not implemented and is ignored",
	"stats_config":         "stats_config is not implemented and is ignored",
	"stats_sinks":          "stats_sinks are not implemented and are ignored",
	"tracing":              "tracing is not implemented yet and is ignored",
	"overload_manager":     "overload_manager is not implemented and is ignored",
	"cluster_manager":      "cluster_manager settings are not implemented and are ignored",
	"watchdogs":            "watchdogs are not implemented and are ignored",
	"stats_flush_interval": "stats_flush_interval is not implemented and is ignored",
}

// LoadBootstrap reads an Envoy bootstrap (YAML or JSON). Listeners whose
// filter is a MetaProtocolProxy are run; anything metaproxy cannot run is
// refused with an error naming it.
func LoadBootstrap(data []byte, filterEnv filter.Env) (*Bootstrap, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	b := &Bootstrap{}
	for _, k := range sortedKeys(top) {
		switch k {
		case "static_resources", "admin":
		case "node": // the node's identity, for metadata_exchange, istio_stats and management servers
			filterEnv.Node = top[k]
			b.XDS.Node = top[k]
		case "dynamic_resources":
			if err := parseDynamic(top[k], &b.XDS); err != nil {
				return nil, fmt.Errorf("bootstrap: %w", err)
			}
		default:
			msg, ok := ignoredTop[k]
			if !ok {
				return nil, fmt.Errorf("bootstrap: unknown field %q", k)
			}
			if msg != "" {
				b.Warnings = append(b.Warnings, "bootstrap: "+msg)
			}
		}
	}
	if a, ok := top["admin"]; ok {
		if b.AdminAddress, err = adminAddress(a); err != nil {
			return nil, fmt.Errorf("bootstrap: admin: %w", err)
		}
	}
	var sr struct {
		Listeners []json.RawMessage `json:"listeners"`
		Clusters  []json.RawMessage `json:"clusters"`
		Secrets   json.RawMessage   `json:"secrets"`
	}
	if err := strict(top["static_resources"], &sr); err != nil {
		return nil, fmt.Errorf("bootstrap: static_resources: %w", err)
	}
	if sr.Secrets != nil {
		b.Warnings = append(b.Warnings, "bootstrap: static_resources.secrets are not used (no TLS in the standalone proxy yet)")
	}
	clusters, warn, err := parseClusters(sr.Clusters)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: static_resources.%w", err)
	}
	b.Warnings = append(b.Warnings, warn...)
	_, b.XDS.Servers = splitServers(clusters)
	for i, raw := range sr.Listeners {
		l, err := parseListener(raw)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: static_resources.listeners[%d]: %w", i, err)
		}
		p, err := api.ParseProxy(l.typedConfig)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: listener %q: %w", l.name, err)
		}
		cfg, w, err := Build(p, clusters, filterEnv)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: listener %q: %w", l.name, err)
		}
		cfg.DynamicClusters = b.XDS.CDS != nil
		if l.bufferLimit > 0 {
			cfg.MaxBufferedBytes = l.bufferLimit
		}
		b.Warnings = append(b.Warnings, l.warnings...)
		b.Warnings = append(b.Warnings, w...)
		b.Listeners = append(b.Listeners, &Listener{Name: l.name, Address: l.address, Proxy: cfg, RDS: p.GetRds()})
	}
	if len(b.Listeners) == 0 {
		return nil, fmt.Errorf("bootstrap: no listener with a %s filter", FilterNames[0])
	}
	return b, nil
}

type rawListener struct {
	name        string
	address     string
	typedConfig json.RawMessage
	bufferLimit int
	warnings    []string
}

type socketAddress struct {
	SocketAddress struct {
		Address   string `json:"address"`
		PortValue int    `json:"port_value"`
		Protocol  string `json:"protocol"`
	} `json:"socket_address"`
}

func (a socketAddress) hostPort() (string, error) {
	sa := a.SocketAddress
	if sa.Address == "" || sa.PortValue < 0 || sa.PortValue > 65535 {
		return "", fmt.Errorf("address needs socket_address.address and port_value")
	}
	if sa.Protocol != "" && sa.Protocol != "TCP" {
		return "", fmt.Errorf("protocol %q is not supported", sa.Protocol)
	}
	return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue)), nil
}

func adminAddress(raw json.RawMessage) (string, error) {
	var a struct {
		Address       socketAddress   `json:"address"`
		AccessLog     json.RawMessage `json:"access_log"`
		AccessLogPath string          `json:"access_log_path"`
		ProfilePath   string          `json:"profile_path"`
	}
	if err := strict(raw, &a); err != nil {
		return "", err
	}
	return a.Address.hostPort()
}

func parseListener(raw json.RawMessage) (*rawListener, error) {
	var l struct {
		Name                          string            `json:"name"`
		Address                       socketAddress     `json:"address"`
		FilterChains                  []json.RawMessage `json:"filter_chains"`
		PerConnectionBufferLimitBytes *int              `json:"per_connection_buffer_limit_bytes"`
		TrafficDirection              string            `json:"traffic_direction"`
		ListenerFilters               json.RawMessage   `json:"listener_filters"`
		StatPrefix                    string            `json:"stat_prefix"`
		BindToPort                    *bool             `json:"bind_to_port"`
	}
	if err := strict(raw, &l); err != nil {
		return nil, err
	}
	out := &rawListener{name: l.Name}
	var err error
	if out.address, err = l.Address.hostPort(); err != nil {
		return nil, fmt.Errorf("listener %q: %w", l.Name, err)
	}
	if l.PerConnectionBufferLimitBytes != nil {
		out.bufferLimit = *l.PerConnectionBufferLimitBytes
	}
	if l.ListenerFilters != nil {
		out.warnings = append(out.warnings, fmt.Sprintf("listener %q: listener_filters are not implemented and are ignored", l.Name))
	}
	if l.BindToPort != nil && !*l.BindToPort {
		return nil, fmt.Errorf("listener %q: bind_to_port: false is not supported", l.Name)
	}
	if len(l.FilterChains) != 1 {
		return nil, fmt.Errorf("listener %q: exactly one filter chain is supported, got %d", l.Name, len(l.FilterChains))
	}
	var fc struct {
		Name             string            `json:"name"`
		Filters          []json.RawMessage `json:"filters"`
		FilterChainMatch json.RawMessage   `json:"filter_chain_match"`
		TransportSocket  json.RawMessage   `json:"transport_socket"`
	}
	if err := strict(l.FilterChains[0], &fc); err != nil {
		return nil, fmt.Errorf("listener %q: filter_chains[0]: %w", l.Name, err)
	}
	if fc.TransportSocket != nil {
		return nil, fmt.Errorf("listener %q: transport_socket (TLS) is not supported by the standalone proxy; run the Envoy plugin for TLS", l.Name)
	}
	if fc.FilterChainMatch != nil {
		return nil, fmt.Errorf("listener %q: filter_chain_match is not supported", l.Name)
	}
	for i, f := range fc.Filters {
		var nf struct {
			Name        string          `json:"name"`
			TypedConfig json.RawMessage `json:"typed_config"`
		}
		if err := strict(f, &nf); err != nil {
			return nil, fmt.Errorf("listener %q: filters[%d]: %w", l.Name, i, err)
		}
		known := false
		for _, n := range FilterNames {
			known = known || n == nf.Name
		}
		if !known {
			return nil, fmt.Errorf("listener %q: network filter %q cannot be run by the standalone proxy (only %v)", l.Name, nf.Name, FilterNames)
		}
		if out.typedConfig != nil {
			return nil, fmt.Errorf("listener %q: more than one meta protocol filter", l.Name)
		}
		if nf.TypedConfig == nil {
			return nil, fmt.Errorf("listener %q: filter %q has no typed_config", l.Name, nf.Name)
		}
		out.typedConfig = nf.TypedConfig
	}
	if out.typedConfig == nil {
		return nil, fmt.Errorf("listener %q: no %s filter", l.Name, FilterNames[0])
	}
	return out, nil
}

// strict decodes raw into v, rejecting unknown fields. Absent raw is fine.
func strict(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s", trimJSON(err.Error()))
	}
	return nil
}

func trimJSON(s string) string {
	const p = "json: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
