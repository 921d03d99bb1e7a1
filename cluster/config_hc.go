package cluster

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Envoy's no_traffic_interval default.
const DefaultNoTrafficInterval = 60 * time.Second

// healthCheckIgnored are the fields accepted but not run, in the order
// they are warned about: a warning each when set to something else than
// their zero value.
var healthCheckIgnored = []struct{ field, why string }{
	{"alt_port", "hosts are checked on their own port"},
	{"no_traffic_healthy_interval", "no_traffic_interval is used for healthy hosts too"},
	{"event_log_path", "health check events are not logged to a file"},
	{"event_logger", "health check events are not logged to a file"},
	{"event_service", "health check events are not streamed"},
	{"always_log_health_check_failures", "only health transitions are logged"},
	{"always_log_health_check_success", "only health transitions are logged"},
	{"tls_options", "checks do not use TLS"},
	{"transport_socket_match_criteria", "checks do not use TLS"},
}

const hcNotApplicable = "does not apply to metaproxy clusters: use tcp_health_check or custom_health_check " + HealthCheckCodecName

// codecCheckConfig: the custom checker's name decides; only metaproxy's
// codec checker's typed_config is read, and it takes none (any "@type").
func codecCheckConfig(obj map[string]any, path string) error {
	tc, ok := obj["typed_config"]
	if !ok || tc == nil {
		return nil
	}
	if name, _ := obj["name"].(string); name != HealthCheckCodecName {
		delete(obj, "typed_config") // FromProto refuses the name
		return nil
	}
	m, ok := tc.(map[string]any)
	if !ok {
		return fmt.Errorf("%s.typed_config: not an object: %s", path, rawJSON(tc))
	}
	for _, f := range sortedKeys(m) {
		if f != "@type" {
			return fmt.Errorf("%s.typed_config: unknown field %q (%s takes no config: the probe is the listener codec's)", path, f, HealthCheckCodecName)
		}
	}
	obj["typed_config"] = emptyAny()
	return nil
}

// parseHealthChecks reads a health_checks JSON list alone into
// c.HealthCheck, as ParseConfig does within a cluster.
func parseHealthChecks(raw json.RawMessage, c *Config) error {
	c.HealthCheck = nil
	if s := strings.TrimSpace(string(raw)); s == "" || s == "null" {
		return nil
	}
	pb, _, err := decodeCluster(json.RawMessage(`{"health_checks":` + string(raw) + `}`))
	if err != nil {
		return err
	}
	return healthChecksFromProto(pb, c)
}

// healthChecksFromProto reads a cluster's health_checks into c.HealthCheck
// (nil when there are none). metaproxy, as Envoy, runs one health check
// per cluster.
func healthChecksFromProto(pb *clusterv3.Cluster, c *Config) error {
	c.HealthCheck = nil
	list := pb.GetHealthChecks()
	switch len(list) {
	case 0:
		return nil
	case 1:
	default:
		return fmt.Errorf("health_checks: %d entries: metaproxy, as Envoy, runs one health check per cluster", len(list))
	}
	const what = "health_checks[0]"
	p := list[0]
	hc := &HealthCheck{ReuseConnection: true}
	for _, d := range []struct {
		k        string
		v        *durationpb.Duration
		dst      *time.Duration
		def      time.Duration
		required bool
	}{
		{"timeout", p.GetTimeout(), &hc.Timeout, 0, true},
		{"interval", p.GetInterval(), &hc.Interval, 0, true},
		{"interval_jitter", p.GetIntervalJitter(), &hc.IntervalJitter, 0, false},
		{"initial_jitter", p.GetInitialJitter(), &hc.InitialJitter, 0, false},
		{"no_traffic_interval", p.GetNoTrafficInterval(), &hc.NoTrafficInterval, DefaultNoTrafficInterval, false},
		{"unhealthy_interval", p.GetUnhealthyInterval(), &hc.UnhealthyInterval, 0, false},
		{"unhealthy_edge_interval", p.GetUnhealthyEdgeInterval(), &hc.UnhealthyEdgeInterval, 0, false},
		{"healthy_edge_interval", p.GetHealthyEdgeInterval(), &hc.HealthyEdgeInterval, 0, false},
		{"no_traffic_healthy_interval", p.GetNoTrafficHealthyInterval(), new(time.Duration), 0, false}, // checked, not run
	} {
		if d.v == nil && d.required {
			return fmt.Errorf("%s: field %q is required", what, d.k)
		}
		var err error
		if *d.dst, err = durationOf(d.v, what+"."+d.k, d.def); err != nil {
			return err
		}
		if d.v != nil && *d.dst == 0 && (d.required || strings.HasSuffix(d.k, "_interval") && d.k != "no_traffic_healthy_interval") {
			return fmt.Errorf("%s.%s: must be greater than 0", what, d.k)
		}
	}
	hc.IntervalJitterPercent = p.GetIntervalJitterPercent()
	for _, t := range []struct {
		k   string
		v   *wrapperspb.UInt32Value
		dst *uint32
	}{{"unhealthy_threshold", p.GetUnhealthyThreshold(), &hc.UnhealthyThreshold}, {"healthy_threshold", p.GetHealthyThreshold(), &hc.HealthyThreshold}} {
		if t.v == nil {
			return fmt.Errorf("%s: field %q is required", what, t.k)
		}
		if t.v.GetValue() == 0 {
			return fmt.Errorf("%s.%s: must be at least 1", what, t.k)
		}
		*t.dst = t.v.GetValue()
	}
	if v := p.GetReuseConnection(); v != nil {
		hc.ReuseConnection = v.GetValue()
	}
	var err error
	switch k := p.GetHealthChecker().(type) {
	case nil:
		return fmt.Errorf("%s: no health checker: set tcp_health_check or custom_health_check %s", what, HealthCheckCodecName)
	case *corev3.HealthCheck_TcpHealthCheck_:
		if hc.TCP, err = tcpHealthCheck(k.TcpHealthCheck, what+".tcp_health_check"); err != nil {
			return err
		}
	case *corev3.HealthCheck_CustomHealthCheck_:
		if err := customHealthCheck(k.CustomHealthCheck, what+".custom_health_check"); err != nil {
			return err
		}
		hc.Codec = true
	case *corev3.HealthCheck_HttpHealthCheck_:
		return fmt.Errorf("%s.http_health_check %s", what, hcNotApplicable)
	case *corev3.HealthCheck_GrpcHealthCheck_:
		return fmt.Errorf("%s.grpc_health_check %s", what, hcNotApplicable)
	default:
		return fmt.Errorf("%s: health checker %T %s", what, k, hcNotApplicable)
	}
	m := p.ProtoReflect()
	for _, ig := range healthCheckIgnored {
		if nonZero(m, ig.field) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: health_checks field %q is not implemented and is ignored: %s", c.Name, ig.field, ig.why))
		}
	}
	c.HealthCheck = hc
	return nil
}

func tcpHealthCheck(t *corev3.HealthCheck_TcpHealthCheck, what string) (*TCPHealthCheck, error) {
	if t.GetProxyProtocolConfig() != nil {
		return nil, fmt.Errorf("%s.proxy_protocol_config: checks with a PROXY protocol header are not supported", what)
	}
	out := &TCPHealthCheck{}
	var err error
	if out.Send, err = payload(t.GetSend(), what+".send"); err != nil {
		return nil, err
	}
	for i, r := range t.GetReceive() {
		b, err := payload(r, fmt.Sprintf("%s.receive[%d]", what, i))
		if err != nil {
			return nil, err
		}
		if len(b) > 0 { // Envoy drops empty blocks
			out.Receive = append(out.Receive, b)
		}
	}
	return out, nil
}

// payload decodes a HealthCheck.Payload: text is hex; binary is bytes
// (base64 in JSON, decoded by then).
func payload(p *corev3.HealthCheck_Payload, what string) ([]byte, error) {
	switch v := p.GetPayload().(type) {
	case *corev3.HealthCheck_Payload_Text:
		b, err := hex.DecodeString(strings.TrimSpace(v.Text))
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%s.text: invalid hex string %q", what, v.Text)
		}
		return b, nil
	case *corev3.HealthCheck_Payload_Binary:
		return v.Binary, nil
	}
	return nil, nil
}

func customHealthCheck(ch *corev3.HealthCheck_CustomHealthCheck, what string) error {
	switch name := ch.GetName(); {
	case name == HealthCheckCodecName:
	case strings.HasPrefix(name, "envoy.health_checkers."):
		return fmt.Errorf("%s: %q %s", what, name, hcNotApplicable)
	default:
		return fmt.Errorf("%s: unknown custom health checker %q: the one metaproxy runs is %q", what, name, HealthCheckCodecName)
	}
	if tc := ch.GetTypedConfig(); tc != nil && len(tc.GetValue()) > 0 {
		return fmt.Errorf("%s.typed_config: %s takes no config: the probe is the listener codec's", what, HealthCheckCodecName)
	}
	return nil
}
