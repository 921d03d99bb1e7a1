// Package cluster holds the upstream clusters a proxy routes to: their
// endpoints (static or resolved from DNS), load balancing and upstream
// health: circuit breakers, outlier detection, active health checks.
//
// Clusters are configured with Envoy's cluster schema (the subset metaproxy
// implements), so the same YAML serves Envoy's bootstrap and the plugin.
package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Type is how a cluster finds its endpoints.
type Type string

// Supported discovery types.
const (
	Static    Type = "STATIC"
	StrictDNS Type = "STRICT_DNS"
)

// Config is one cluster, parsed from Envoy's cluster schema.
type Config struct {
	Name           string
	Type           Type
	ConnectTimeout time.Duration
	// LBPolicy is ROUND_ROBIN (default), RANDOM, LEAST_REQUEST, RING_HASH
	// or MAGLEV.
	LBPolicy string
	// MinRingSize and MaxRingSize bound a RING_HASH ring
	// (ring_hash_lb_config); 0 means Envoy's defaults, DefaultMinRingSize
	// and DefaultMaxRingSize.
	MinRingSize, MaxRingSize uint64
	// MaglevTableSize is a MAGLEV cluster's table size
	// (maglev_lb_config.table_size), a prime; 0 means Envoy's default,
	// DefaultMaglevTableSize.
	MaglevTableSize uint64
	// MaxRetries is the DEFAULT-priority circuit breaker's max_retries: the
	// most retries in flight to the cluster at once. ParseConfig sets
	// Envoy's default, DefaultMaxRetries, when it is not configured; in a
	// Config built in Go, 0 means no retries.
	MaxRetries int
	// MaxConnections, MaxPendingRequests and MaxRequests are the
	// DEFAULT-priority circuit breaker's other thresholds (ParseConfig:
	// Envoy's default, DefaultCircuitBreakerLimit, when not configured; in
	// a Config built in Go, 0 means that default too). See breaker.go.
	MaxConnections, MaxPendingRequests, MaxRequests int

	// PanicThreshold is common_lb_config.healthy_panic_threshold, a
	// percentage: below it the cluster is in panic mode (see Pick). 0
	// disables panic mode; ParseConfig sets DefaultPanicThreshold when it
	// is not configured.
	PanicThreshold float64
	// OutlierDetection is outlier_detection; nil for none.
	OutlierDetection *OutlierDetection
	// HealthCheck is the cluster's health_checks entry (Envoy runs one);
	// nil for none.
	HealthCheck *HealthCheck

	DNSRefreshRate time.Duration
	// Endpoints are "host:port" strings (IP literals for STATIC).
	Endpoints []Endpoint
	// Warnings lists fields that were accepted but are not implemented yet.
	Warnings []string
}

// Endpoint is a configured endpoint.
type Endpoint struct {
	Host   string
	Port   int
	Weight uint32
	// HashKey is the endpoint's metadata filter_metadata["envoy.lb"].hash_key:
	// when set, RING_HASH and MAGLEV hash it instead of the host's address.
	HashKey string
}

// Defaults from Envoy.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultDNSRefreshRate = 5 * time.Second
)

// fields that metaproxy accepts but does not implement yet: a warning each.
var notImplemented = map[string]bool{
	"upstream_connection_options": true, "per_connection_buffer_limit_bytes": true,
	"dns_lookup_family": true, "respect_dns_ttl": true, "max_requests_per_connection": true,
	"typed_extension_protocol_options": true, "common_http_protocol_options": true, "metadata": true,
	"ignore_health_on_host_removal": true, "close_connections_on_host_health_failure": true,
	"track_cluster_stats": true, "alt_stat_name": true, "cleanup_interval": true,
}

// fields whose presence means the cluster cannot be run faithfully.
var refused = map[string]string{
	"transport_socket":       "upstream TLS (transport_socket) is not supported: in Envoy, TLS belongs to the plainText cluster",
	"eds_cluster_config":     "EDS clusters are not supported yet: use STATIC or STRICT_DNS",
	"lb_subset_config":       "subset load balancing is not supported yet",
	"http2_protocol_options": "HTTP/2 protocol options do not apply to metaproxy clusters",
}

// ParseConfig parses one cluster from its JSON form (Envoy field names).
// Unknown fields are errors naming the field.
func ParseConfig(raw json.RawMessage) (Config, error) {
	var c Config
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return c, fmt.Errorf("cluster: %w", err)
	}
	str := func(k string) (string, error) {
		var s string
		if v, ok := m[k]; ok {
			if err := json.Unmarshal(v, &s); err != nil {
				return "", fmt.Errorf("field %q: %w", k, err)
			}
		}
		return s, nil
	}
	var err error
	if c.Name, err = str("name"); err != nil {
		return c, fmt.Errorf("cluster: %w", err)
	}
	if c.Name == "" {
		return c, fmt.Errorf("cluster: a cluster needs a name")
	}
	wrap := func(err error) error { return fmt.Errorf("cluster %q: %w", c.Name, err) }
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "name", "type", "connect_timeout", "lb_policy", "load_assignment", "dns_refresh_rate", "@type",
			"ring_hash_lb_config", "maglev_lb_config", "circuit_breakers", "outlier_detection", "health_checks", "common_lb_config":
		default:
			if why, bad := refused[k]; bad {
				return c, wrap(fmt.Errorf("%s", why))
			}
			if notImplemented[k] {
				c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: field %q is not implemented yet and is ignored", c.Name, k))
				continue
			}
			return c, wrap(fmt.Errorf("unknown field %q", k))
		}
	}
	t, err := str("type")
	if err != nil {
		return c, wrap(err)
	}
	switch Type(t) {
	case "":
		c.Type = Static
	case Static, StrictDNS:
		c.Type = Type(t)
	case "LOGICAL_DNS":
		c.Type = StrictDNS
		c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: LOGICAL_DNS is run as STRICT_DNS", c.Name))
	default:
		return c, wrap(fmt.Errorf("type %q is not supported: use STATIC or STRICT_DNS", t))
	}
	if c.ConnectTimeout, err = durationField(m, "connect_timeout", DefaultConnectTimeout); err != nil {
		return c, wrap(err)
	}
	if c.DNSRefreshRate, err = durationField(m, "dns_refresh_rate", DefaultDNSRefreshRate); err != nil {
		return c, wrap(err)
	}
	if c.LBPolicy, err = str("lb_policy"); err != nil {
		return c, wrap(err)
	}
	if c.LBPolicy == "" {
		c.LBPolicy = "ROUND_ROBIN"
	}
	if err := parseLBConfig(m, &c); err != nil {
		return c, wrap(err)
	}
	if err := parseCircuitBreakers(m["circuit_breakers"], &c); err != nil {
		return c, wrap(err)
	}
	if err := parseOutlierDetection(m["outlier_detection"], &c); err != nil {
		return c, wrap(err)
	}
	if err := parseHealthChecks(m["health_checks"], &c); err != nil {
		return c, wrap(err)
	}
	if err := parseCommonLB(m["common_lb_config"], &c); err != nil {
		return c, wrap(err)
	}
	if la, ok := m["load_assignment"]; ok {
		if c.Endpoints, err = parseLoadAssignment(la); err != nil {
			return c, wrap(err)
		}
	}
	if len(c.Endpoints) == 0 {
		return c, wrap(fmt.Errorf("no endpoints: set load_assignment"))
	}
	var sum uint64
	for _, ep := range c.Endpoints {
		sum += uint64(ep.Weight)
	}
	if sum > math.MaxUint32 {
		return c, wrap(fmt.Errorf("load_assignment: the sum of the endpoints' load_balancing_weight exceeds %d", uint64(math.MaxUint32)))
	}
	return c, nil
}

func durationField(m map[string]json.RawMessage, k string, def time.Duration) (time.Duration, error) {
	v, ok := m[k]
	if !ok {
		return def, nil
	}
	d, err := ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("field %q: %w", k, err)
	}
	return d, nil
}

// ParseDuration parses a protobuf JSON duration ("1.5s") or a Go duration
// ("250ms").
func ParseDuration(v json.RawMessage) (time.Duration, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		var obj struct {
			Seconds int64 `json:"seconds"`
			Nanos   int64 `json:"nanos"`
		}
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err2 := dec.Decode(&obj); err2 != nil {
			return 0, fmt.Errorf("not a duration: %s", v)
		}
		return time.Duration(obj.Seconds)*time.Second + time.Duration(obj.Nanos), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("not a duration: %q", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

type loadAssignment struct {
	ClusterName string `json:"cluster_name"`
	Endpoints   []struct {
		Locality    json.RawMessage `json:"locality"`
		LbEndpoints []struct {
			Endpoint struct {
				Address struct {
					SocketAddress struct {
						Address   string `json:"address"`
						PortValue int    `json:"port_value"`
						Protocol  string `json:"protocol"`
					} `json:"socket_address"`
				} `json:"address"`
				Hostname string `json:"hostname"`
			} `json:"endpoint"`
			LoadBalancingWeight *uint32         `json:"load_balancing_weight"`
			HealthStatus        string          `json:"health_status"`
			Metadata            json.RawMessage `json:"metadata"`
		} `json:"lb_endpoints"`
		LoadBalancingWeight *uint32 `json:"load_balancing_weight"`
		Priority            int     `json:"priority"`
	} `json:"endpoints"`
}

func parseLoadAssignment(raw json.RawMessage) ([]Endpoint, error) {
	var la loadAssignment
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&la); err != nil {
		return nil, fmt.Errorf("load_assignment: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	var out []Endpoint
	for _, le := range la.Endpoints {
		for _, lb := range le.LbEndpoints {
			sa := lb.Endpoint.Address.SocketAddress
			if sa.Protocol != "" && sa.Protocol != "TCP" {
				return nil, fmt.Errorf("load_assignment: protocol %q is not supported", sa.Protocol)
			}
			if sa.Address == "" || sa.PortValue <= 0 || sa.PortValue > 65535 {
				return nil, fmt.Errorf("load_assignment: endpoint needs socket_address.address and a port_value in 1-65535")
			}
			w := uint32(1)
			if lb.LoadBalancingWeight != nil {
				w = *lb.LoadBalancingWeight
			}
			if w == 0 {
				return nil, fmt.Errorf("load_assignment: endpoint %s:%d: load_balancing_weight must be at least 1", sa.Address, sa.PortValue)
			}
			key, err := hashKeyMetadata(lb.Metadata)
			if err != nil {
				return nil, fmt.Errorf("load_assignment: endpoint %s:%d: metadata: %w", sa.Address, sa.PortValue, err)
			}
			if lb.HealthStatus == "UNHEALTHY" || lb.HealthStatus == "DRAINING" {
				continue
			}
			out = append(out, Endpoint{Host: sa.Address, Port: sa.PortValue, Weight: w, HashKey: key})
		}
	}
	return out, nil
}
