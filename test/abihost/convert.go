package abihost

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/config"
)

// PlainTextCluster is the plainText cluster PluginBootstrap adds. Its
// connect timeout is an outer bound: the engine applies each cluster's own
// connect_timeout itself.
var PlainTextCluster = map[string]any{
	"name":            "plainText",
	"type":            "ORIGINAL_DST",
	"lb_policy":       "CLUSTER_PROVIDED",
	"connect_timeout": "10s",
	"circuit_breakers": map[string]any{"thresholds": []any{map[string]any{
		"max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000,
	}}},
}

// IsPluginBootstrap reports whether bootstrap already runs the golang filter.
func IsPluginBootstrap(bootstrap []byte) bool {
	return strings.Contains(string(bootstrap), GolangFilter)
}

// PluginBootstrap rewrites a standalone bootstrap (listeners whose filter is
// a MetaProtocolProxy, the clusters in static_resources) into the bootstrap
// Envoy runs with the plugin: each MetaProtocolProxy becomes the golang
// filter's plugin_config, the static clusters move into its clusters list,
// and the plainText cluster takes their place.
func PluginBootstrap(standalone []byte, libraryPath string) ([]byte, error) {
	js, err := yaml.YAMLToJSON(standalone)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	sr, _ := doc["static_resources"].(map[string]any)
	if sr == nil {
		return nil, fmt.Errorf("bootstrap: no static_resources")
	}
	clusters, _ := sr["clusters"].([]any)
	listeners, _ := sr["listeners"].([]any)
	// Envoy's admin cannot show the plugin's stats: its address becomes the
	// plugin's metrics_address (served once per process).
	metricsAddress := adminAddress(doc)
	delete(doc, "admin")
	// The bootstrap's node identity is the plugin's plugin_config node, and
	// its dynamic_resources (CDS, ADS) are plugin_config's: Envoy's own
	// would drive Envoy, not the plugin.
	node := doc["node"]
	dynamic := doc["dynamic_resources"]
	delete(doc, "dynamic_resources")
	for i, l := range listeners {
		lm, _ := l.(map[string]any)
		chains, _ := lm["filter_chains"].([]any)
		for j, c := range chains {
			cm, _ := c.(map[string]any)
			filters, _ := cm["filters"].([]any)
			for k, f := range filters {
				fm, _ := f.(map[string]any)
				name, _ := fm["name"].(string)
				if !slices.Contains(config.FilterNames, name) {
					continue
				}
				value, err := proxyFields(fm["typed_config"])
				if err != nil {
					return nil, fmt.Errorf("bootstrap: listeners[%d].filter_chains[%d].filters[%d]: %w", i, j, k, err)
				}
				value["clusters"] = clusters
				if metricsAddress != "" {
					value["metrics_address"] = metricsAddress
				}
				if node != nil {
					value["node"] = node
				}
				if dynamic != nil {
					value["dynamic_resources"] = dynamic
				}
				filters[k] = map[string]any{
					"name": GolangFilter,
					"typed_config": map[string]any{
						"@type":              golangConfigType,
						"is_terminal_filter": true,
						"library_id":         "metaprotocol",
						"library_path":       libraryPath,
						"plugin_name":        "metaprotocol",
						"plugin_config": map[string]any{
							"@type":    "type.googleapis.com/xds.type.v3.TypedStruct",
							"type_url": "type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy",
							"value":    value,
						},
					},
				}
			}
		}
	}
	sr["clusters"] = []any{PlainTextCluster}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(out)
}

// adminAddress returns the bootstrap's admin address as "host:port", or "".
func adminAddress(doc map[string]any) string {
	admin, _ := doc["admin"].(map[string]any)
	addr, _ := admin["address"].(map[string]any)
	sa, _ := addr["socket_address"].(map[string]any)
	host, _ := sa["address"].(string)
	port, ok := sa["port_value"].(float64)
	if host == "" || !ok {
		return ""
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// proxyFields returns the MetaProtocolProxy fields of a filter's
// typed_config, given directly or as a TypedStruct.
func proxyFields(tc any) (map[string]any, error) {
	m, _ := tc.(map[string]any)
	if m == nil {
		return nil, fmt.Errorf("no typed_config")
	}
	t, _ := m["@type"].(string)
	if strings.HasSuffix(t, ".TypedStruct") {
		v, _ := m["value"].(map[string]any)
		if v == nil {
			v = map[string]any{}
		}
		return v, nil
	}
	out := map[string]any{}
	for k, v := range m {
		if k != "@type" {
			out[k] = v
		}
	}
	return out, nil
}
