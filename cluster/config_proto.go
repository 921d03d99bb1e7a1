package cluster

import (
	"errors"
	"fmt"
	"sort"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// handled are the Cluster fields FromProto reads.
var handled = map[string]bool{
	"name": true, "type": true, "connect_timeout": true, "lb_policy": true, "load_assignment": true, "dns_refresh_rate": true,
	"ring_hash_lb_config": true, "maglev_lb_config": true, "circuit_breakers": true, "outlier_detection": true,
	"health_checks": true, "common_lb_config": true, "eds_cluster_config": true, "transport_socket": true,
	"http2_protocol_options": true, "typed_extension_protocol_options": true,
}

// fields that metaproxy accepts but does not implement yet: a warning each.
var notImplemented = map[string]bool{
	"upstream_connection_options": true, "per_connection_buffer_limit_bytes": true,
	"dns_lookup_family": true, "respect_dns_ttl": true, "max_requests_per_connection": true,
	"common_http_protocol_options": true, "metadata": true,
	"ignore_health_on_host_removal": true, "close_connections_on_host_health_failure": true,
	"track_cluster_stats": true, "alt_stat_name": true, "cleanup_interval": true,
}

// fields whose presence means the cluster cannot be run faithfully.
var refused = map[string]string{
	"lb_subset_config": "subset load balancing is not supported yet",
	"cluster_type":     "custom cluster types (cluster_type) are not supported: use type STATIC, STRICT_DNS or EDS",
}

// httpOptionsKey is the typed_extension_protocol_options key of
// HttpProtocolOptions.
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// FromProto converts a cluster from go-control-plane's type: the single
// conversion, for file config (ParseConfig) and CDS resources. Defaults are
// Envoy's; a field metaproxy accepts without implementing it adds a warning
// to Config.Warnings; a field it cannot honour, or does not know, is an
// error naming it.
func FromProto(pb *clusterv3.Cluster) (Config, error) {
	var c Config
	if c.Name = pb.GetName(); c.Name == "" {
		return c, errors.New("cluster: a cluster needs a name")
	}
	wrap := func(err error) error { return fmt.Errorf("cluster %q: %w", c.Name, err) }
	if err := checkClusterFields(pb, &c); err != nil {
		return c, wrap(err)
	}
	switch t := pb.GetType(); t {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_EDS:
		c.Type = Type(t.String())
	case clusterv3.Cluster_LOGICAL_DNS:
		c.Type = StrictDNS
		c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: LOGICAL_DNS is run as STRICT_DNS", c.Name))
	default:
		return c, wrap(fmt.Errorf("type %q is not supported: use STATIC, STRICT_DNS or EDS", t.String()))
	}
	var err error
	if c.ConnectTimeout, err = durationOf(pb.GetConnectTimeout(), "connect_timeout", DefaultConnectTimeout); err != nil {
		return c, wrap(err)
	}
	if c.DNSRefreshRate, err = durationOf(pb.GetDnsRefreshRate(), "dns_refresh_rate", DefaultDNSRefreshRate); err != nil {
		return c, wrap(err)
	}
	c.LBPolicy = pb.GetLbPolicy().String()
	for _, step := range []func(*clusterv3.Cluster, *Config) error{lbConfigFromProto, circuitBreakersFromProto,
		outlierFromProto, healthChecksFromProto, commonLBFromProto, edsFromProto, tlsFromProto} {
		if err := step(pb, &c); err != nil {
			return c, wrap(err)
		}
	}
	if c.Type == EDS {
		if pb.GetLoadAssignment() != nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: load_assignment is ignored: an EDS cluster's endpoints come from EDS", c.Name))
		}
		return c, nil
	}
	if c.Endpoints, err = EndpointsFromProto(pb.GetLoadAssignment()); err != nil {
		return c, wrap(fmt.Errorf("load_assignment: %w", err))
	}
	if len(c.Endpoints) == 0 {
		return c, wrap(fmt.Errorf("no endpoints: set load_assignment"))
	}
	return c, nil
}

// checkClusterFields goes through the fields set, in name order: a
// warning for each one not implemented, an error for one refused or not
// known to metaproxy. It reads the protocol options (Config.HTTP2).
func checkClusterFields(pb *clusterv3.Cluster, c *Config) error {
	var names []string
	pb.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		names = append(names, string(fd.Name()))
		return true
	})
	sort.Strings(names)
	warn := func(k string) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: field %q is not implemented yet and is ignored", c.Name, k))
	}
	for _, k := range names {
		switch {
		case k == "http2_protocol_options":
			c.HTTP2 = true
		case k == "typed_extension_protocol_options":
			http2, others, err := protocolOptions(pb.GetTypedExtensionProtocolOptions())
			if err != nil {
				return err
			}
			c.HTTP2 = c.HTTP2 || http2
			if others {
				warn(k)
			}
		case handled[k]:
		case refused[k] != "":
			return errors.New(refused[k])
		case notImplemented[k]:
			warn(k)
		default:
			return fmt.Errorf("field %q is not supported", k)
		}
	}
	return nil
}

// protocolOptions reads typed_extension_protocol_options: http2 when
// HttpProtocolOptions' explicit_http_config is HTTP/2, others when any
// entry says something else (not implemented).
func protocolOptions(opts map[string]*anypb.Any) (http2, others bool, err error) {
	for k, a := range opts {
		if k != httpOptionsKey {
			others = true
			continue
		}
		var hpo httpv3.HttpProtocolOptions
		if err := a.UnmarshalTo(&hpo); err != nil {
			return false, false, fmt.Errorf("typed_extension_protocol_options[%q]: %w", k, err)
		}
		if hpo.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
			http2 = true
		} else {
			others = true
		}
	}
	return http2, others, nil
}

// durationOf converts a duration field: def when unset; negative ones are
// errors.
func durationOf(d *durationpb.Duration, what string, def time.Duration) (time.Duration, error) {
	if d == nil {
		return def, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	if v := d.AsDuration(); v < 0 {
		return 0, fmt.Errorf("%s: negative duration %s", what, v)
	}
	return d.AsDuration(), nil
}

// has reports whether m's field name is set.
func has(m protoreflect.Message, name string) bool {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	return fd != nil && m.Has(fd)
}

// nonZero reports whether m's field name is set to something else than its
// zero value (an empty message is zero).
func nonZero(m protoreflect.Message, name string) bool {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil || !m.Has(fd) {
		return false
	}
	if fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
		return proto.Size(m.Get(fd).Message().Interface()) > 0
	}
	return true
}
