// Package cluster holds the upstream clusters a proxy routes to: their
// endpoints (static, resolved from DNS or fed by EDS), load balancing and
// upstream health: circuit breakers, outlier detection, active health
// checks.
//
// Clusters are configured with Envoy's cluster schema (the subset metaproxy
// implements), so the same YAML serves Envoy's bootstrap and the plugin.
// Files and xDS take one path: a cluster is go-control-plane's
// clusterv3.Cluster (ParseConfig reads its JSON with protojson), turned
// into a Config by FromProto.
package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Type is how a cluster finds its endpoints.
type Type string

// Supported discovery types.
const (
	Static    Type = "STATIC"
	StrictDNS Type = "STRICT_DNS"
	// EDS clusters have no endpoints when parsed: they come from the
	// cluster's EDS source, through (*Cluster).Update.
	EDS Type = "EDS"
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
	// most retries in flight to the cluster at once. FromProto sets Envoy's
	// default, DefaultMaxRetries, when it is not configured; in a Config
	// built in Go, 0 means no retries.
	MaxRetries int
	// MaxConnections, MaxPendingRequests and MaxRequests are the
	// DEFAULT-priority circuit breaker's other thresholds (FromProto:
	// Envoy's default, DefaultCircuitBreakerLimit, when not configured; in
	// a Config built in Go, 0 means that default too). See breaker.go.
	MaxConnections, MaxPendingRequests, MaxRequests int

	// PanicThreshold is common_lb_config.healthy_panic_threshold, a
	// percentage: below it the cluster is in panic mode (see Pick). 0
	// disables panic mode; FromProto sets DefaultPanicThreshold when it is
	// not configured.
	PanicThreshold float64
	// OutlierDetection is outlier_detection; nil for none.
	OutlierDetection *OutlierDetection
	// HealthCheck is the cluster's health_checks entry (Envoy runs one);
	// nil for none.
	HealthCheck *HealthCheck

	DNSRefreshRate time.Duration
	// Endpoints are the load_assignment's endpoints (see EndpointsFromProto);
	// IP literals for STATIC, none for EDS.
	Endpoints []Endpoint
	// EDS is an EDS cluster's eds_cluster_config; nil for other types.
	EDS *EDSConfig
	// HTTP2 is set when the cluster speaks HTTP/2 to its hosts
	// (http2_protocol_options, or typed_extension_protocol_options'
	// HttpProtocolOptions with explicit_http_config.http2_protocol_options):
	// a gRPC management server's cluster.
	HTTP2 bool
	// TLS is the transport_socket's UpstreamTlsContext files; nil for
	// plaintext. Only clusters of management servers may have it: New
	// refuses it.
	TLS *TLSFiles
	// Warnings lists fields that were accepted but are not implemented yet.
	Warnings []string
}

// Endpoint is a configured endpoint.
type Endpoint struct {
	// Host and Port are the socket_address; Path is a pipe's (a unix
	// socket's) path instead, with Host empty and Port 0.
	Host   string
	Port   int
	Path   string
	Weight uint32
	// HashKey is the endpoint's metadata filter_metadata["envoy.lb"].hash_key:
	// when set, RING_HASH and MAGLEV hash it instead of the host's address.
	HashKey string
	// Priority is the endpoint's LocalityLbEndpoints priority (0 is the
	// highest); Locality its locality, "region/zone/sub_zone" without the
	// trailing empty parts ("" for none).
	Priority uint32
	Locality string
}

// EDSConfig is an EDS cluster's eds_cluster_config.
type EDSConfig struct {
	// ServiceName is the name of the ClusterLoadAssignment to ask for: the
	// cluster's name unless service_name is set.
	ServiceName string
	// Source is eds_config.
	Source ConfigSource
}

// TLSFiles is an UpstreamTlsContext's files: the client certificate and
// key (both empty for none), the CA bundle that verifies the server (empty:
// the system's roots) and the SNI (empty: the host's name).
type TLSFiles struct {
	CertFile, KeyFile, CAFile, SNI string
}

// Defaults from Envoy.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultDNSRefreshRate = 5 * time.Second
)

// ParseConfig parses one cluster from its JSON form (Envoy's field names,
// snake_case): protojson into clusterv3.Cluster, then
// FromProto. Unknown fields are errors naming the field. Beyond protojson's
// forms it accepts what metaproxy always did: wrappers as {"value": x},
// durations as {"seconds", "nanos"} or Go durations ("250ms"), integers as
// strings, bytes in any base64 alphabet.
func ParseConfig(raw json.RawMessage) (Config, error) {
	pb, name, err := decodeCluster(raw)
	if err != nil {
		if name == "" {
			return Config{}, fmt.Errorf("cluster: %w", err)
		}
		return Config{Name: name}, fmt.Errorf("cluster %q: %w", name, err)
	}
	return FromProto(pb)
}

// ParseDuration parses a protobuf JSON duration ("1.5s" or {"seconds": 1,
// "nanos": 500000000}) or a Go duration ("250ms").
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
