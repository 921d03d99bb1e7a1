package abihost

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/cncf/xds/go/udpa/type/v1" // udpa.type.v1.TypedStruct, for plugin_config
	_ "github.com/cncf/xds/go/xds/type/v3"  // xds.type.v3.TypedStruct, for plugin_config
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// GolangFilter is the name of Envoy's golang network filter.
const GolangFilter = "envoy.filters.network.golang"

const golangConfigType = "type.googleapis.com/envoy.extensions.filters.network.golang.v3alpha.Config"

// Envoy's defaults for the plainText cluster.
const (
	defaultConnectTimeout = 5 * time.Second
	defaultMaxConnections = 1024
)

// Options adjust a translation.
type Options struct {
	// LibraryPath replaces every golang filter's library_path: the shipped
	// configs name the path inside the proxy image.
	LibraryPath string
	// Workers is the number of worker loops (Envoy's --concurrency); zero
	// means 2.
	Workers int
	// LogLevel is the level of Envoy's golang logger; empty means info.
	LogLevel string
}

// Translate turns an Envoy bootstrap into the host's config: for every
// listener, its address and the golang filter's library, plugin name and
// plugin_config serialized as Envoy hands it to the plugin (the binary Any);
// and the plainText cluster's connect timeout and connection limit.
//
// The host runs only what the plugin relies on, so a listener must have one
// filter chain, no listener filters, and the golang filter as its only,
// terminal filter; anything else is an error rather than silently ignored.
func Translate(bootstrap []byte, o Options) ([]byte, error) {
	js, err := yaml.YAMLToJSON(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var doc struct {
		StaticResources struct {
			Listeners []json.RawMessage `json:"listeners"`
			Clusters  []json.RawMessage `json:"clusters"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var b strings.Builder
	workers := o.Workers
	if workers == 0 {
		workers = 2
	}
	level := o.LogLevel
	if level == "" {
		level = "info"
	}
	fmt.Fprintf(&b, "workers %d\nlog_level %s\n", workers, level)
	for i, raw := range doc.StaticResources.Clusters {
		line, err := plainText(raw)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: static_resources.clusters[%d]: %w", i, err)
		}
		b.WriteString(line)
	}
	if len(doc.StaticResources.Listeners) == 0 {
		return nil, errors.New("bootstrap: no listeners")
	}
	for i, raw := range doc.StaticResources.Listeners {
		line, err := listener(raw, o)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: static_resources.listeners[%d]: %w", i, err)
		}
		b.WriteString(line)
	}
	return []byte(b.String()), nil
}

// plainText returns the host's cluster line for the plainText cluster, or
// "" for any other cluster (Envoy's cluster manager is out of the plugin's
// reach).
func plainText(raw json.RawMessage) (string, error) {
	var c struct {
		Name            string          `json:"name"`
		Type            string          `json:"type"`
		LbPolicy        string          `json:"lb_policy"`
		ConnectTimeout  string          `json:"connect_timeout"`
		CircuitBreakers json.RawMessage `json:"circuit_breakers"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", err
	}
	if c.Name != "plainText" {
		return "", nil
	}
	if c.Type != "ORIGINAL_DST" || c.LbPolicy != "CLUSTER_PROVIDED" {
		return "", fmt.Errorf("cluster plainText is %s/%s: the plugin needs type ORIGINAL_DST and lb_policy CLUSTER_PROVIDED", c.Type, c.LbPolicy)
	}
	timeout := defaultConnectTimeout
	if c.ConnectTimeout != "" {
		var err error
		if timeout, err = duration(c.ConnectTimeout); err != nil {
			return "", fmt.Errorf("cluster plainText: connect_timeout: %w", err)
		}
	}
	maxConns := int64(defaultMaxConnections)
	if c.CircuitBreakers != nil {
		var cb struct {
			Thresholds []struct {
				Priority       string          `json:"priority"`
				MaxConnections json.RawMessage `json:"max_connections"`
			} `json:"thresholds"`
		}
		if err := json.Unmarshal(c.CircuitBreakers, &cb); err != nil {
			return "", fmt.Errorf("cluster plainText: circuit_breakers: %w", err)
		}
		for _, th := range cb.Thresholds {
			if (th.Priority == "" || th.Priority == "DEFAULT") && th.MaxConnections != nil {
				n, err := strconv.ParseInt(strings.Trim(string(th.MaxConnections), `"`), 10, 64)
				if err != nil {
					return "", fmt.Errorf("cluster plainText: max_connections: %w", err)
				}
				maxConns = n
			}
		}
	}
	return fmt.Sprintf("cluster plainText %d %d\n", timeout.Milliseconds(), maxConns), nil
}

// duration parses a protobuf JSON duration ("1s", "0.250s").
func duration(s string) (time.Duration, error) {
	if !strings.HasSuffix(s, "s") {
		return 0, fmt.Errorf("duration %q: want seconds such as \"1s\" or \"0.25s\"", s)
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("duration %q: want seconds such as \"1s\" or \"0.25s\"", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

type golangConfig struct {
	Type             string          `json:"@type"`
	IsTerminalFilter bool            `json:"is_terminal_filter"`
	LibraryID        string          `json:"library_id"`
	LibraryPath      string          `json:"library_path"`
	PluginName       string          `json:"plugin_name"`
	PluginConfig     json.RawMessage `json:"plugin_config"`
}

func listener(raw json.RawMessage, o Options) (string, error) {
	var l struct {
		Name    string `json:"name"`
		Address struct {
			SocketAddress struct {
				Address   string `json:"address"`
				PortValue int    `json:"port_value"`
			} `json:"socket_address"`
		} `json:"address"`
		ListenerFilters []json.RawMessage `json:"listener_filters"`
		FilterChains    []struct {
			FilterChainMatch json.RawMessage `json:"filter_chain_match"`
			Filters          []struct {
				Name        string       `json:"name"`
				TypedConfig golangConfig `json:"typed_config"`
			} `json:"filters"`
		} `json:"filter_chains"`
	}
	if err := json.Unmarshal(raw, &l); err != nil {
		return "", err
	}
	if l.Name == "" || strings.ContainsAny(l.Name, " \t\n") {
		return "", fmt.Errorf("listener name %q: want a name without spaces", l.Name)
	}
	if len(l.ListenerFilters) > 0 {
		return "", fmt.Errorf("listener %q: listener_filters are not run by the ABI host", l.Name)
	}
	if len(l.FilterChains) != 1 || l.FilterChains[0].FilterChainMatch != nil {
		return "", fmt.Errorf("listener %q: the ABI host runs exactly one filter chain without filter_chain_match", l.Name)
	}
	fs := l.FilterChains[0].Filters
	if len(fs) != 1 || fs[0].Name != GolangFilter {
		return "", fmt.Errorf("listener %q: the ABI host runs a filter chain whose only filter is %s", l.Name, GolangFilter)
	}
	g := fs[0].TypedConfig
	switch {
	case g.Type != golangConfigType:
		return "", fmt.Errorf("listener %q: golang filter typed_config is %q, want %s", l.Name, g.Type, golangConfigType)
	case !g.IsTerminalFilter:
		return "", fmt.Errorf("listener %q: the golang filter is the last filter: Envoy requires is_terminal_filter: true", l.Name)
	case g.LibraryID == "" || g.PluginName == "" || g.LibraryPath == "":
		return "", fmt.Errorf("listener %q: golang filter needs library_id, library_path and plugin_name", l.Name)
	}
	path := g.LibraryPath
	if o.LibraryPath != "" {
		path = o.LibraryPath
	}
	cfg, err := serializeAny(g.PluginConfig)
	if err != nil {
		return "", fmt.Errorf("listener %q: plugin_config: %w", l.Name, err)
	}
	a := l.Address.SocketAddress
	if a.Address == "" {
		return "", fmt.Errorf("listener %q: want address.socket_address.address", l.Name)
	}
	for _, f := range []string{g.LibraryID, path, g.PluginName} {
		if strings.ContainsAny(f, " \t\n") {
			return "", fmt.Errorf("listener %q: %q: the ABI host config cannot carry spaces", l.Name, f)
		}
	}
	h := hex.EncodeToString(cfg)
	if h == "" {
		h = "-" // an empty Any
	}
	return fmt.Sprintf("listener %s %s %d %s %s %s %s\n", l.Name, a.Address, a.PortValue, g.LibraryID, path, g.PluginName, h), nil
}

// serializeAny turns plugin_config's JSON into the bytes Envoy hands the
// plugin: the Any parsed with the types it names, then serialized
// (config.cc: pluginConfig().SerializeToString). Envoy passes an empty Any
// when plugin_config is absent.
func serializeAny(js json.RawMessage) ([]byte, error) {
	a := &anypb.Any{}
	if len(js) > 0 && string(js) != "null" {
		if err := protojson.Unmarshal(js, a); err != nil {
			return nil, err
		}
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(a)
}
