package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"sigs.k8s.io/yaml"
)

// FilterName is the network filter name that carries a MetaProtocolProxy.
const FilterName = "envoy.filters.network.meta_protocol_proxy"

// ProxyType is the typed_config type of a MetaProtocolProxy.
const ProxyType = "type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy"

// Bootstrap describes an Envoy bootstrap: MetaProtocolProxy listeners on
// 127.0.0.1 and static clusters. Render turns it into YAML.
type Bootstrap struct {
	AdminPort int // 0: no admin section
	Listeners []Listener
	Clusters  []Cluster
	// Top adds top-level sections (node, dynamic_resources).
	Top map[string]any
}

// Listener is one listener whose only filter is a MetaProtocolProxy.
type Listener struct {
	Name  string // default "listener_<port>"
	Port  int
	Proxy MetaProtocolProxy
}

// MetaProtocolProxy is the filter's typed_config in Aeraki's schema.
type MetaProtocolProxy struct {
	StatPrefix   string // default the listener name
	Protocol     string // "dubbo", "thrift", ...
	Codec        string // default "aeraki.meta_protocol.codec.<Protocol>"
	Multiplexing bool
	IdleTimeout  string // "300s"; empty: unset
	// Filters is meta_protocol_filters; empty leaves the field out (the
	// default chain, router only).
	Filters     []Filter
	RouteConfig string // route_config.name, default "routes"
	Routes      []Route
	// Extra adds or overrides typed_config fields.
	Extra map[string]any
}

// Filter is one entry of meta_protocol_filters.
type Filter struct {
	Name   string
	Config map[string]any // typed config, with its "@type"; nil: none
}

// Route is one route of route_config; the first match wins.
type Route struct {
	Name  string
	Match []Match // all must hold; empty matches everything
	// Cluster is the destination; Weighted, if set, replaces it.
	Cluster          string
	Weighted         []WeightedCluster
	RequestMutation  []KV
	ResponseMutation []KV
	// Extra adds or overrides fields of the route's "route" action
	// (hash_policy, request_mirror_policies, ...).
	Extra map[string]any
}

// Match is an Envoy HeaderMatcher on a metadata key. Set exactly one of
// Exact, Prefix, Suffix, Regex and Present.
type Match struct {
	Name                         string
	Exact, Prefix, Suffix, Regex string
	Present                      bool
	Invert                       bool
}

// Exact returns a matcher for metadata key name equal to value.
func Exact(name, value string) Match { return Match{Name: name, Exact: value} }

// WeightedCluster is one entry of weighted_clusters.
type WeightedCluster struct {
	Name   string
	Weight int
}

// KV is a mutation entry.
type KV struct{ Key, Value string }

// Cluster is a STATIC cluster.
type Cluster struct {
	Name           string
	Endpoints      []string // "host:port"
	ConnectTimeout string   // default "1s"
	LBPolicy       string   // empty: Envoy's default (ROUND_ROBIN)
	// Extra adds or overrides cluster fields.
	Extra map[string]any
}

// Render returns b as YAML.
func (b Bootstrap) Render() (string, error) {
	var listeners, clusters []any
	for _, l := range b.Listeners {
		listeners = append(listeners, l.tree())
	}
	for _, c := range b.Clusters {
		t, err := c.tree()
		if err != nil {
			return "", err
		}
		clusters = append(clusters, t)
	}
	top := map[string]any{"static_resources": map[string]any{"listeners": listeners, "clusters": clusters}}
	if b.AdminPort != 0 {
		top["admin"] = map[string]any{"address": socketAddress("127.0.0.1", b.AdminPort)}
	}
	for k, v := range b.Top {
		top[k] = v
	}
	out, err := yaml.Marshal(top)
	return string(out), err
}

// MustRender is Render for bootstraps built in code, which cannot fail to
// render unless an endpoint is malformed; it panics then.
func (b Bootstrap) MustRender() string {
	s, err := b.Render()
	if err != nil {
		panic(err)
	}
	return s
}

func socketAddress(host string, port int) map[string]any {
	return map[string]any{"socket_address": map[string]any{"address": host, "port_value": port}}
}

func (l Listener) tree() map[string]any {
	name := l.Name
	if name == "" {
		name = fmt.Sprintf("listener_%d", l.Port)
	}
	return map[string]any{
		"name":    name,
		"address": socketAddress("127.0.0.1", l.Port),
		"filter_chains": []any{map[string]any{"filters": []any{map[string]any{
			"name":         FilterName,
			"typed_config": l.Proxy.tree(name),
		}}}},
	}
}

func (p MetaProtocolProxy) tree(listener string) map[string]any {
	codec := p.Codec
	if codec == "" {
		codec = "aeraki.meta_protocol.codec." + p.Protocol
	}
	stat := p.StatPrefix
	if stat == "" {
		stat = listener
	}
	rc := p.RouteConfig
	if rc == "" {
		rc = "routes"
	}
	routes := []any{}
	for _, r := range p.Routes {
		routes = append(routes, r.tree())
	}
	t := map[string]any{
		"@type":       ProxyType,
		"stat_prefix": stat,
		"protocol": map[string]any{
			"name":         p.Protocol,
			"codec":        map[string]any{"name": codec},
			"multiplexing": p.Multiplexing,
		},
		"route_config": map[string]any{"name": rc, "routes": routes},
	}
	if p.IdleTimeout != "" {
		t["idle_timeout"] = p.IdleTimeout
	}
	if len(p.Filters) > 0 {
		var fs []any
		for _, f := range p.Filters {
			e := map[string]any{"name": f.Name}
			if f.Config != nil {
				e["config"] = f.Config
			}
			fs = append(fs, e)
		}
		t["meta_protocol_filters"] = fs
	}
	for k, v := range p.Extra {
		t[k] = v
	}
	if _, ok := p.Extra["rds"]; ok { // routes from RDS: no route_config (a oneof)
		delete(t, "route_config")
	}
	return t
}

func (r Route) tree() map[string]any {
	var ms []any
	for _, m := range r.Match {
		ms = append(ms, m.tree())
	}
	action := map[string]any{}
	if len(r.Weighted) > 0 {
		var cs []any
		for _, w := range r.Weighted {
			cs = append(cs, map[string]any{"name": w.Name, "weight": w.Weight})
		}
		action["weighted_clusters"] = map[string]any{"clusters": cs}
	} else {
		action["cluster"] = r.Cluster
	}
	for k, v := range r.Extra {
		action[k] = v
	}
	t := map[string]any{"name": r.Name, "route": action}
	if len(ms) > 0 {
		t["match"] = map[string]any{"metadata": ms}
	}
	if len(r.RequestMutation) > 0 {
		t["request_mutation"] = kvs(r.RequestMutation)
	}
	if len(r.ResponseMutation) > 0 {
		t["response_mutation"] = kvs(r.ResponseMutation)
	}
	return t
}

func kvs(in []KV) []any {
	var out []any
	for _, kv := range in {
		out = append(out, map[string]any{"key": kv.Key, "value": kv.Value})
	}
	return out
}

func (m Match) tree() map[string]any {
	t := map[string]any{"name": m.Name}
	switch {
	case m.Present:
		t["present_match"] = true
	case m.Prefix != "":
		t["prefix_match"] = m.Prefix
	case m.Suffix != "":
		t["suffix_match"] = m.Suffix
	case m.Regex != "":
		t["safe_regex_match"] = map[string]any{"regex": m.Regex}
	default:
		t["exact_match"] = m.Exact
	}
	if m.Invert {
		t["invert_match"] = true
	}
	return t
}

func (c Cluster) tree() (map[string]any, error) {
	timeout := c.ConnectTimeout
	if timeout == "" {
		timeout = "1s"
	}
	var eps []any
	for _, e := range c.Endpoints {
		host, port, err := net.SplitHostPort(e)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: endpoint %q: %w", c.Name, e, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: endpoint %q: %w", c.Name, e, err)
		}
		eps = append(eps, map[string]any{"endpoint": map[string]any{"address": socketAddress(host, p)}})
	}
	t := map[string]any{
		"name":            c.Name,
		"type":            "STATIC",
		"connect_timeout": timeout,
		"load_assignment": map[string]any{
			"cluster_name": c.Name,
			"endpoints":    []any{map[string]any{"lb_endpoints": eps}},
		},
	}
	if c.LBPolicy != "" {
		t["lb_policy"] = c.LBPolicy
	}
	for k, v := range c.Extra {
		t[k] = v
	}
	return t, nil
}

// ListenerAddr returns "host:port" of the first listener of an Envoy
// bootstrap in YAML or JSON.
func ListenerAddr(bootstrapYAML string) (string, error) {
	js, err := yaml.YAMLToJSON([]byte(bootstrapYAML))
	if err != nil {
		return "", err
	}
	var b struct {
		StaticResources struct {
			Listeners []struct {
				Address struct {
					SocketAddress struct {
						Address   string `json:"address"`
						PortValue int    `json:"port_value"`
					} `json:"socket_address"`
				} `json:"address"`
			} `json:"listeners"`
		} `json:"static_resources"`
	}
	if err := json.Unmarshal(js, &b); err != nil {
		return "", err
	}
	if len(b.StaticResources.Listeners) == 0 {
		return "", fmt.Errorf("bootstrap has no static listener")
	}
	sa := b.StaticResources.Listeners[0].Address.SocketAddress
	return net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue)), nil
}
