package cluster

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseHC(t *testing.T, js string) (*HealthCheck, []string, error) {
	t.Helper()
	c := Config{Name: "c"}
	err := parseHealthChecks(json.RawMessage(js), &c)
	return c.HealthCheck, c.Warnings, err
}

func TestParseHealthChecksFull(t *testing.T) {
	hc, warns, err := parseHC(t, `[{
	  "timeout": "0.5s", "interval": "10s", "interval_jitter": "1s", "interval_jitter_percent": 10,
	  "initial_jitter": "2s", "no_traffic_interval": "30s", "unhealthy_interval": "20s",
	  "unhealthy_edge_interval": "3s", "healthy_edge_interval": "4s",
	  "unhealthy_threshold": {"value": 3}, "healthy_threshold": 2,
	  "reuse_connection": {"value": false},
	  "tcp_health_check": {"send": {"text": "50494e47"}, "receive": [{"text": "504f4e47"}, {"binary": "T0s="}, {}]}
	}]`)
	if err != nil {
		t.Fatal(err)
	}
	want := &HealthCheck{Timeout: 500 * time.Millisecond, Interval: 10 * time.Second, IntervalJitter: time.Second,
		IntervalJitterPercent: 10, InitialJitter: 2 * time.Second, NoTrafficInterval: 30 * time.Second,
		UnhealthyInterval: 20 * time.Second, UnhealthyEdgeInterval: 3 * time.Second, HealthyEdgeInterval: 4 * time.Second,
		UnhealthyThreshold: 3, HealthyThreshold: 2,
		TCP: &TCPHealthCheck{Send: []byte("PING"), Receive: [][]byte{[]byte("PONG"), []byte("OK")}}}
	if !reflect.DeepEqual(hc, want) {
		t.Errorf("got %+v %+v\nwant %+v %+v", hc, hc.TCP, want, want.TCP)
	}
	if len(warns) != 0 {
		t.Errorf("warnings %v", warns)
	}
}

func TestParseHealthChecksDefaultsAndCodec(t *testing.T) {
	hc, _, err := parseHC(t, `[{"timeout": "1s", "interval": "5s", "unhealthy_threshold": "2", "healthy_threshold": {"value": 1},
	  "custom_health_check": {"name": "metaproxy.health_checkers.codec", "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"}}}]`)
	if err != nil {
		t.Fatal(err)
	}
	want := &HealthCheck{Timeout: time.Second, Interval: 5 * time.Second, NoTrafficInterval: DefaultNoTrafficInterval,
		UnhealthyThreshold: 2, HealthyThreshold: 1, ReuseConnection: true, Codec: true}
	if !reflect.DeepEqual(hc, want) {
		t.Errorf("got %+v\nwant %+v", hc, want)
	}
	hc, _, err = parseHC(t, `[{"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1, "reuse_connection": true,
	  "tcp_health_check": {}}]`)
	if err != nil {
		t.Fatal(err)
	}
	if hc.TCP == nil || hc.TCP.Send != nil || hc.TCP.Receive != nil || !hc.ReuseConnection || hc.Codec {
		t.Errorf("connect-only check parsed as %+v %+v", hc, hc.TCP)
	}
}

func TestParseHealthChecksAbsent(t *testing.T) {
	for _, js := range []string{``, `null`, `[]`} {
		hc, _, err := parseHC(t, js)
		if err != nil || hc != nil {
			t.Errorf("%q: %+v, %v", js, hc, err)
		}
	}
}

func TestParseHealthChecksWarnings(t *testing.T) {
	_, warns, err := parseHC(t, `[{"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1,
	  "tcp_health_check": {}, "event_log_path": "/dev/stdout", "always_log_health_check_failures": true,
	  "always_log_health_check_success": false, "no_traffic_healthy_interval": "60s", "alt_port": {"value": 8080},
	  "tls_options": {"alpn_protocols": ["h2"]}, "transport_socket_match_criteria": {}}]`)
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(warns, "\n")
	for _, k := range []string{"event_log_path", "always_log_health_check_failures", "no_traffic_healthy_interval", "alt_port", "tls_options"} {
		if !strings.Contains(joined, `"`+k+`"`) {
			t.Errorf("no warning for %s: %v", k, warns)
		}
	}
	// Fields set to their zero value change nothing: no warning.
	for _, k := range []string{"always_log_health_check_success", "transport_socket_match_criteria"} {
		if strings.Contains(joined, `"`+k+`"`) {
			t.Errorf("a warning for %s set to its default: %v", k, warns)
		}
	}
	if len(warns) != 5 || !strings.HasPrefix(warns[0], `cluster "c": `) {
		t.Errorf("warnings %q", warns)
	}
}

func TestParseHealthChecksErrors(t *testing.T) {
	const base = `"timeout": "1s", "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1`
	entry := func(extra string) string { return `[{` + base + `, ` + extra + `}]` }
	without := func(k string) string {
		fs := map[string]string{"timeout": `"1s"`, "interval": `"5s"`, "unhealthy_threshold": `2`, "healthy_threshold": `1`, "tcp_health_check": `{}`}
		delete(fs, k)
		var parts []string
		for k, v := range fs {
			parts = append(parts, `"`+k+`": `+v)
		}
		return `[{` + strings.Join(parts, ", ") + `}]`
	}
	for _, tc := range []struct{ name, js, want string }{
		{"no timeout", without("timeout"), `"timeout" is required`},
		{"no interval", without("interval"), `"interval" is required`},
		{"no unhealthy_threshold", without("unhealthy_threshold"), `"unhealthy_threshold" is required`},
		{"no healthy_threshold", without("healthy_threshold"), `"healthy_threshold" is required`},
		{"no checker", without("tcp_health_check"), "no health checker"},
		{"null timeout", `[{"timeout": null, "interval": "5s", "unhealthy_threshold": 2, "healthy_threshold": 1, "tcp_health_check": {}}]`, `"timeout" is required`},
		{"zero interval", `[{"timeout": "1s", "interval": "0s", "unhealthy_threshold": 2, "healthy_threshold": 1, "tcp_health_check": {}}]`, "interval: must be greater than 0"},
		{"zero threshold", `[{"timeout": "1s", "interval": "1s", "unhealthy_threshold": {"value": 0}, "healthy_threshold": 1, "tcp_health_check": {}}]`, "unhealthy_threshold: must be at least 1"},
		{"bad duration", entry(`"tcp_health_check": {}, "unhealthy_interval": "soon"`), "unhealthy_interval: not a duration"},
		{"bad threshold", `[{"timeout": "1s", "interval": "1s", "unhealthy_threshold": -1, "healthy_threshold": 1, "tcp_health_check": {}}]`, "unhealthy_threshold: not an unsigned integer"},
		{"bad wrapper", `[{"timeout": "1s", "interval": "1s", "unhealthy_threshold": {"val": 1}, "healthy_threshold": 1, "tcp_health_check": {}}]`, `unknown field "val"`},
		{"bad reuse", entry(`"tcp_health_check": {}, "reuse_connection": "yes"`), "reuse_connection: not a bool"},
		{"two entries", `[` + strings.Trim(entry(`"tcp_health_check": {}`), "[]") + `, ` + strings.Trim(entry(`"tcp_health_check": {}`), "[]") + `]`, "one health check per cluster"},
		{"not a list", `{}`, "not a list"},
		{"http", entry(`"http_health_check": {"path": "/healthz"}`), "http_health_check does not apply to metaproxy clusters: use tcp_health_check or custom_health_check metaproxy.health_checkers.codec"},
		{"grpc", entry(`"grpc_health_check": {}`), "grpc_health_check does not apply to metaproxy clusters"},
		{"redis", entry(`"custom_health_check": {"name": "envoy.health_checkers.redis"}`), `"envoy.health_checkers.redis" does not apply to metaproxy clusters`},
		{"two checkers", entry(`"tcp_health_check": {}, "custom_health_check": {"name": "metaproxy.health_checkers.codec"}`), "set only one"},
		{"unknown field", entry(`"tcp_health_check": {}, "bogus": 1`), `unknown field "bogus"`},
		{"unknown tcp field", entry(`"tcp_health_check": {"sned": {}}`), `tcp_health_check: unknown field "sned"`},
		{"proxy protocol", entry(`"tcp_health_check": {"proxy_protocol_config": {"version": "V2"}}`), "proxy_protocol_config"},
		{"bad hex", entry(`"tcp_health_check": {"send": {"text": "zz"}}`), "send.text: invalid hex"},
		{"empty hex", entry(`"tcp_health_check": {"send": {"text": ""}}`), "send.text: invalid hex"},
		{"odd hex", entry(`"tcp_health_check": {"receive": [{"text": "abc"}]}`), "receive[0].text: invalid hex"},
		{"bad base64", entry(`"tcp_health_check": {"receive": [{"binary": "!!"}]}`), "receive[0].binary: invalid base64"},
		{"text and binary", entry(`"tcp_health_check": {"send": {"text": "00", "binary": "AA=="}}`), "set only one"},
		{"receive not a list", entry(`"tcp_health_check": {"receive": {"text": "00"}}`), "receive: not a list"},
		{"custom wrong name", entry(`"custom_health_check": {"name": "acme.check"}`), `unknown custom health checker "acme.check": the one metaproxy runs is "metaproxy.health_checkers.codec"`},
		{"custom no name", entry(`"custom_health_check": {}`), `"metaproxy.health_checkers.codec"`},
		{"custom config", entry(`"custom_health_check": {"name": "metaproxy.health_checkers.codec", "typed_config": {"@type": "x", "value": 1}}`), `typed_config: unknown field "value"`},
	} {
		_, _, err := parseHC(t, tc.js)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestParseHealthChecksPayloads(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    string
	}{
		{`{"text": "48656C6c6F"}`, "Hello"},
		{`{"binary": "SGVsbG8="}`, "Hello"},
		{`{"binary": "SGVsbG8"}`, "Hello"}, // unpadded
		{`{"binary": "_-8="}`, "\xff\xef"}, // URL-safe
		{`{"binary": "/+8="}`, "\xff\xef"},
	} {
		hc, _, err := parseHC(t, `[{"timeout": "1s", "interval": "1s", "unhealthy_threshold": 1, "healthy_threshold": 1,
		  "tcp_health_check": {"send": `+tc.payload+`, "receive": [`+tc.payload+`]}}]`)
		if err != nil {
			t.Errorf("%s: %v", tc.payload, err)
			continue
		}
		if string(hc.TCP.Send) != tc.want || len(hc.TCP.Receive) != 1 || string(hc.TCP.Receive[0]) != tc.want {
			t.Errorf("%s: send %q receive %q, want %q", tc.payload, hc.TCP.Send, hc.TCP.Receive, tc.want)
		}
	}
}
