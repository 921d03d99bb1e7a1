package abihost

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"sigs.k8s.io/yaml"
)

// Localize adapts a shipped bootstrap to a test machine: every listener
// listens on 127.0.0.1 on a free port, and each plugin cluster named in
// endpoints becomes a STATIC cluster of those "ip:port" addresses (the
// shipped clusters name hosts of a real deployment).
func Localize(bootstrap []byte, endpoints map[string][]string) ([]byte, error) {
	js, err := yaml.YAMLToJSON(bootstrap)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	sr, _ := doc["static_resources"].(map[string]any)
	listeners, _ := sr["listeners"].([]any)
	seen := map[string]bool{}
	for _, l := range listeners {
		lm, _ := l.(map[string]any)
		if lm == nil {
			continue
		}
		lm["address"] = map[string]any{"socket_address": map[string]any{"address": "127.0.0.1", "port_value": 0}}
		for _, c := range pluginClusters(lm) {
			name, _ := c["name"].(string)
			addrs, ok := endpoints[name]
			if !ok {
				continue
			}
			seen[name] = true
			if err := setStatic(c, name, addrs); err != nil {
				return nil, err
			}
		}
	}
	for name := range endpoints {
		if !seen[name] {
			return nil, fmt.Errorf("localize: no plugin cluster named %q", name)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(out)
}

// pluginClusters returns the clusters in the plugin_config of every golang
// filter of listener l.
func pluginClusters(l map[string]any) []map[string]any {
	var out []map[string]any
	chains, _ := l["filter_chains"].([]any)
	for _, ch := range chains {
		chm, _ := ch.(map[string]any)
		filters, _ := chm["filters"].([]any)
		for _, f := range filters {
			fm, _ := f.(map[string]any)
			tc, _ := fm["typed_config"].(map[string]any)
			pc, _ := tc["plugin_config"].(map[string]any)
			v, _ := pc["value"].(map[string]any)
			cs, _ := v["clusters"].([]any)
			for _, c := range cs {
				if cm, ok := c.(map[string]any); ok {
					out = append(out, cm)
				}
			}
		}
	}
	return out
}

func setStatic(c map[string]any, name string, addrs []string) error {
	var eps []any
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("localize: cluster %q: %w", name, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("localize: cluster %q: port %q: %w", name, port, err)
		}
		eps = append(eps, map[string]any{"endpoint": map[string]any{"address": map[string]any{
			"socket_address": map[string]any{"address": host, "port_value": p}}}})
	}
	c["type"] = "STATIC"
	c["load_assignment"] = map[string]any{"cluster_name": name, "endpoints": []any{map[string]any{"lb_endpoints": eps}}}
	return nil
}
