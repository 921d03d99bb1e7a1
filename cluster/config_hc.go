package cluster

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// Envoy's no_traffic_interval default.
const DefaultNoTrafficInterval = 60 * time.Second

// healthCheckFields are the core.v3.HealthCheck fields.
var healthCheckFields = []string{
	"timeout", "interval", "initial_jitter", "interval_jitter", "interval_jitter_percent",
	"unhealthy_threshold", "healthy_threshold", "alt_port", "reuse_connection",
	"http_health_check", "tcp_health_check", "grpc_health_check", "custom_health_check",
	"no_traffic_interval", "no_traffic_healthy_interval", "unhealthy_interval",
	"unhealthy_edge_interval", "healthy_edge_interval",
	"event_log_path", "event_logger", "event_service",
	"always_log_health_check_failures", "always_log_health_check_success",
	"tls_options", "transport_socket_match_criteria",
}

// healthCheckIgnored are the fields accepted but not run: a warning each.
var healthCheckIgnored = map[string]string{
	"alt_port":                         "hosts are checked on their own port",
	"no_traffic_healthy_interval":      "no_traffic_interval is used for healthy hosts too",
	"event_log_path":                   "health check events are not logged to a file",
	"event_logger":                     "health check events are not logged to a file",
	"event_service":                    "health check events are not streamed",
	"always_log_health_check_failures": "only health transitions are logged",
	"always_log_health_check_success":  "only health transitions are logged",
	"tls_options":                      "checks do not use TLS",
	"transport_socket_match_criteria":  "checks do not use TLS",
}

const hcNotApplicable = "does not apply to metaproxy clusters: use tcp_health_check or custom_health_check " + HealthCheckCodecName

// parseHealthChecks reads a cluster's health_checks list into
// c.HealthCheck (nil when absent, null or empty). metaproxy, as Envoy,
// runs one health check per cluster.
func parseHealthChecks(raw json.RawMessage, c *Config) error {
	c.HealthCheck = nil
	if isNull(raw) {
		return nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("health_checks: not a list: %s", raw)
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
	default:
		return fmt.Errorf("health_checks: %d entries: metaproxy, as Envoy, runs one health check per cluster", len(list))
	}
	const what = "health_checks[0]"
	fs, err := fields(list[0], what, healthCheckFields...)
	if err != nil {
		return err
	}
	hc := &HealthCheck{ReuseConnection: true}

	durs := []struct {
		k        string
		dst      *time.Duration
		def      time.Duration
		required bool
	}{
		{"timeout", &hc.Timeout, 0, true},
		{"interval", &hc.Interval, 0, true},
		{"interval_jitter", &hc.IntervalJitter, 0, false},
		{"initial_jitter", &hc.InitialJitter, 0, false},
		{"no_traffic_interval", &hc.NoTrafficInterval, DefaultNoTrafficInterval, false},
		{"unhealthy_interval", &hc.UnhealthyInterval, 0, false},
		{"unhealthy_edge_interval", &hc.UnhealthyEdgeInterval, 0, false},
		{"healthy_edge_interval", &hc.HealthyEdgeInterval, 0, false},
	}
	for _, d := range durs {
		v, ok := fs[d.k]
		if !ok || isNull(v) {
			if d.required {
				return fmt.Errorf("%s: field %q is required", what, d.k)
			}
			*d.dst = d.def
			continue
		}
		if *d.dst, err = ParseDuration(v); err != nil {
			return fmt.Errorf("%s.%s: %w", what, d.k, err)
		}
		if *d.dst < 0 {
			return fmt.Errorf("%s.%s: negative duration %s", what, d.k, v)
		}
		if *d.dst == 0 && (d.required || strings.HasSuffix(d.k, "interval")) {
			return fmt.Errorf("%s.%s: must be greater than 0", what, d.k)
		}
	}
	pct, _, err := uintField(fs, "interval_jitter_percent", what, math.MaxUint32)
	if err != nil {
		return err
	}
	hc.IntervalJitterPercent = uint32(pct)
	for _, t := range []struct {
		k   string
		dst *uint32
	}{{"unhealthy_threshold", &hc.UnhealthyThreshold}, {"healthy_threshold", &hc.HealthyThreshold}} {
		v, set, err := wrappedUint(fs, t.k, what)
		if err != nil {
			return err
		}
		if !set {
			return fmt.Errorf("%s: field %q is required", what, t.k)
		}
		if v == 0 {
			return fmt.Errorf("%s.%s: must be at least 1", what, t.k)
		}
		*t.dst = uint32(v)
	}
	if v, ok := fs["reuse_connection"]; ok && !isNull(v) {
		if hc.ReuseConnection, err = wrappedBool(v, what+".reuse_connection"); err != nil {
			return err
		}
	}

	var checkers []string
	for _, k := range []string{"http_health_check", "grpc_health_check", "tcp_health_check", "custom_health_check"} {
		if v, ok := fs[k]; ok && !isNull(v) {
			checkers = append(checkers, k)
		}
	}
	switch len(checkers) {
	case 0:
		return fmt.Errorf("%s: no health checker: set tcp_health_check or custom_health_check %s", what, HealthCheckCodecName)
	case 1:
	default:
		return fmt.Errorf("%s: %s are one of health_checker: set only one", what, strings.Join(checkers, " and "))
	}
	switch k := checkers[0]; k {
	case "tcp_health_check":
		if hc.TCP, err = parseTCPHealthCheck(fs[k], what+"."+k); err != nil {
			return err
		}
	case "custom_health_check":
		if err := parseCustomHealthCheck(fs[k], what+"."+k); err != nil {
			return err
		}
		hc.Codec = true
	default:
		return fmt.Errorf("%s.%s %s", what, k, hcNotApplicable)
	}

	if v, ok := fs["no_traffic_healthy_interval"]; ok && !isNull(v) {
		if _, err := ParseDuration(v); err != nil {
			return fmt.Errorf("%s.no_traffic_healthy_interval: %w", what, err)
		}
	}
	for _, k := range healthCheckFields {
		why, ignored := healthCheckIgnored[k]
		if v, ok := fs[k]; ok && ignored && !zeroJSON(v) {
			c.Warnings = append(c.Warnings, fmt.Sprintf("cluster %q: health_checks field %q is not implemented and is ignored: %s", c.Name, k, why))
		}
	}
	c.HealthCheck = hc
	return nil
}

// wrappedUint reads a UInt32Value: a number (or numeric string), as proto
// JSON writes it, or {"value": n}.
func wrappedUint(fs map[string]json.RawMessage, k, what string) (uint64, bool, error) {
	v, ok := fs[k]
	if ok && strings.HasPrefix(strings.TrimSpace(string(v)), "{") {
		inner, err := fields(v, what+"."+k, "value")
		if err != nil {
			return 0, false, err
		}
		n, _, err := uintField(inner, "value", what+"."+k, math.MaxUint32)
		return n, true, err
	}
	return uintField(fs, k, what, math.MaxUint32)
}

// wrappedBool reads a BoolValue: a bool or {"value": b}.
func wrappedBool(v json.RawMessage, what string) (bool, error) {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b, nil
	}
	inner, err := fields(v, what, "value")
	if err != nil {
		return false, fmt.Errorf("%s: not a bool: %s", what, v)
	}
	if iv, ok := inner["value"]; ok && !isNull(iv) {
		if err := json.Unmarshal(iv, &b); err != nil {
			return false, fmt.Errorf("%s.value: not a bool: %s", what, iv)
		}
	}
	return b, nil
}

// zeroJSON reports whether v is null or a zero value (false, 0, "", {}, []).
func zeroJSON(v json.RawMessage) bool {
	switch strings.Join(strings.Fields(string(v)), "") {
	case "", "null", "false", "0", `""`, "{}", "[]":
		return true
	}
	return false
}

func parseTCPHealthCheck(raw json.RawMessage, what string) (*TCPHealthCheck, error) {
	fs, err := fields(raw, what, "send", "receive", "proxy_protocol_config")
	if err != nil {
		return nil, err
	}
	if v, ok := fs["proxy_protocol_config"]; ok && !isNull(v) {
		return nil, fmt.Errorf("%s.proxy_protocol_config: checks with a PROXY protocol header are not supported", what)
	}
	t := &TCPHealthCheck{}
	if v, ok := fs["send"]; ok && !isNull(v) {
		if t.Send, err = parsePayload(v, what+".send"); err != nil {
			return nil, err
		}
	}
	if v, ok := fs["receive"]; ok && !isNull(v) {
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, fmt.Errorf("%s.receive: not a list: %s", what, v)
		}
		for i, p := range list {
			b, err := parsePayload(p, fmt.Sprintf("%s.receive[%d]", what, i))
			if err != nil {
				return nil, err
			}
			if len(b) > 0 { // Envoy drops empty blocks
				t.Receive = append(t.Receive, b)
			}
		}
	}
	return t, nil
}

// parsePayload decodes a HealthCheck.Payload: text is hex, binary base64
// (as proto JSON writes bytes).
func parsePayload(raw json.RawMessage, what string) ([]byte, error) {
	fs, err := fields(raw, what, "text", "binary")
	if err != nil {
		return nil, err
	}
	tv, hasText := fs["text"]
	bv, hasBin := fs["binary"]
	hasText, hasBin = hasText && !isNull(tv), hasBin && !isNull(bv)
	switch {
	case hasText && hasBin:
		return nil, fmt.Errorf("%s: text and binary are one of payload: set only one", what)
	case hasText:
		var s string
		if err := json.Unmarshal(tv, &s); err != nil {
			return nil, fmt.Errorf("%s.text: not a string: %s", what, tv)
		}
		b, err := hex.DecodeString(strings.TrimSpace(s))
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%s.text: invalid hex string %q", what, s)
		}
		return b, nil
	case hasBin:
		var s string
		if err := json.Unmarshal(bv, &s); err != nil {
			return nil, fmt.Errorf("%s.binary: not a string: %s", what, bv)
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("%s.binary: invalid base64 %q", what, s)
	}
	return nil, nil
}

func parseCustomHealthCheck(raw json.RawMessage, what string) error {
	fs, err := fields(raw, what, "name", "typed_config")
	if err != nil {
		return err
	}
	var name string
	if v, ok := fs["name"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &name); err != nil {
			return fmt.Errorf("%s.name: not a string: %s", what, v)
		}
	}
	switch {
	case name == HealthCheckCodecName:
	case strings.HasPrefix(name, "envoy.health_checkers."):
		return fmt.Errorf("%s: %q %s", what, name, hcNotApplicable)
	default:
		return fmt.Errorf("%s: unknown custom health checker %q: the one metaproxy runs is %q", what, name, HealthCheckCodecName)
	}
	if v, ok := fs["typed_config"]; ok && !isNull(v) {
		if _, err := fields(v, what+".typed_config", "@type"); err != nil {
			return fmt.Errorf("%w (%s takes no config: the probe is the listener codec's)", err, HealthCheckCodecName)
		}
	}
	return nil
}
