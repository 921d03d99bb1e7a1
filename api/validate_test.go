package api

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metaproxy/metaproxy/api/v1alpha"
)

func TestValidateErrors(t *testing.T) {
	// action adds fields to the first route's action.
	action := func(fields string) string {
		return strings.Replace(base, "      cluster: c0\n", "      cluster: c0\n      "+fields+"\n", 1)
	}
	const validOn = "connect-failure, reset, per-try-timeout, server-failure"
	// minimal names a protocol and a codec in the deprecated fields, and no routes.
	const minimal = "stat_prefix: s\napplication_protocol: p\ncodec: {name: c}\n"
	tests := []struct {
		name, doc, want string
	}{
		{"no stat prefix", strings.Replace(base, "stat_prefix: test", "", 1),
			"value is required at stat_prefix"},
		{"no protocol name", strings.Replace(base, "  name: dubbo\n", "", 1),
			"an application protocol name is required (protocol.name, or the deprecated application_protocol) at protocol.name"},
		{"no codec", strings.Replace(base, "  codec:\n    name: aeraki.meta_protocol.codec.dubbo\n", "", 1),
			"a codec name is required (protocol.codec.name, or the deprecated codec.name) at protocol.codec.name"},
		{"no routes", minimal,
			"meta_protocol_proxy: route_config or rds is required"},
		{"rds without name", minimal + "rds: {config_source: {ads: {}}}\n",
			"value is required at rds.route_config_name"},
		{"rds without source", minimal + "rds: {route_config_name: r}\n",
			"value is required at rds.config_source"},
		{"rds over REST", minimal + "rds: {route_config_name: r, config_source: {api_config_source: {api_type: REST}}}\n",
			"REST is not supported; use GRPC or DELTA_GRPC at rds.config_source.api_config_source.api_type"},
		{"rds without cluster", minimal + "rds: {route_config_name: r, config_source: {api_config_source: {api_type: GRPC, grpc_services: {envoy_grpc: {}}}}}\n",
			"value is required at rds.config_source.api_config_source.grpc_services[0].envoy_grpc.cluster_name"},
		{"route without action", strings.Replace(base, "    route:\n      cluster: c0\n", "", 1),
			"cluster or weighted_clusters is required at route_config.routes[0].route"},
		{"empty cluster", strings.Replace(base, "cluster: c0", "cluster: ''", 1),
			"value is required at route_config.routes[0].route.cluster"},
		{"weight missing", strings.Replace(base, "cluster: c0", "weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b}]}", 1),
			"value is required at route_config.routes[0].route.weighted_clusters.clusters[1].weight"},
		{"zero weights", strings.Replace(base, "cluster: c0", "weighted_clusters: {clusters: [{name: a, weight: 0}]}", 1),
			"the weights add up to zero at route_config.routes[0].route.weighted_clusters.clusters"},
		{"bad regex", strings.Replace(base, "exact_match: sayHello", "safe_regex_match: {regex: 'say(('}", 1),
			"invalid RE2 expression"},
		{"empty prefix", strings.Replace(base, "exact_match: sayHello", "prefix_match: ''", 1),
			"value must not be empty at route_config.routes[0].match.metadata[0].prefix_match"},
		{"empty string matcher", strings.Replace(base, "exact_match: sayHello", "string_match: {ignore_case: true}", 1),
			"one of exact, prefix, suffix, contains or safe_regex is required at route_config.routes[0].match.metadata[0].string_match"},
		{"matcher without name", strings.Replace(base, "- name: method\n        exact_match: sayHello", "- present_match: true", 1),
			"value is required at route_config.routes[0].match.metadata[0].name"},
		{"mirror without cluster", strings.Replace(base, "cluster: c0", "cluster: c0\n      request_mirror_policies: [{runtime_fraction: {default_value: {numerator: 5}}}]", 1),
			"value is required at route_config.routes[0].route.request_mirror_policies[0].cluster"},
		{"mutation without key", strings.Replace(base, "    route:\n", "    request_mutation: [{value: v}]\n    route:\n", 1),
			"value is required at route_config.routes[0].request_mutation[0].key"},
		{"negative route timeout", action("timeout: -1s"),
			"duration -1s is negative at route_config.routes[0].route.timeout"},
		{"retry policy without retry_on", action("retry_policy: {num_retries: 1}"),
			"value is required: one or more of " + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"empty retry policy", action("retry_policy: {}"),
			"value is required: one or more of " + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"blank retry_on", action("retry_policy: {retry_on: '  '}"),
			"value is required: one or more of " + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"unknown retry condition", action("retry_policy: {retry_on: 'reset, 5xx'}"),
			`unknown condition "5xx"; valid conditions are ` + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"retry conditions are case-sensitive", action("retry_policy: {retry_on: Reset}"),
			`unknown condition "Reset"; valid conditions are ` + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"empty retry condition", action("retry_policy: {retry_on: 'reset,,connect-failure'}"),
			`empty condition in "reset,,connect-failure"; valid conditions are ` + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"trailing comma in retry_on", action("retry_policy: {retry_on: 'reset,'}"),
			`empty condition in "reset,"; valid conditions are ` + validOn + " at route_config.routes[0].route.retry_policy.retry_on"},
		{"too many retries", action("retry_policy: {retry_on: reset, num_retries: 11}"),
			"11 retries, at most 10 allowed at route_config.routes[0].route.retry_policy.num_retries"},
		{"negative per-try timeout", action("retry_policy: {retry_on: reset, per_try_timeout: -1s}"),
			"duration -1s is negative at route_config.routes[0].route.retry_policy.per_try_timeout"},
		{"per-try timeout above the route's", action("timeout: 1s\n      retry_policy: {retry_on: reset, per_try_timeout: 1500ms}"),
			"1.5s exceeds the route's timeout 1s at route_config.routes[0].route.retry_policy.per_try_timeout"},
		{"retry policy of a later route", strings.Replace(base, "      cluster: c0\n", "      cluster: c0\n  - route: {cluster: c1, retry_policy: {retry_on: connect_failure}}\n", 1),
			`unknown condition "connect_failure"; valid conditions are ` + validOn + " at route_config.routes[1].route.retry_policy.retry_on"},
		{"filter without name", base + "meta_protocol_filters: [{}]\n",
			"value is required at meta_protocol_filters[0].name"},
		{"tracing above 100%", base + "tracing: {random_sampling: {value: 101}}\n",
			"101 is outside [0, 100] at tracing.random_sampling.value"},
		{"negative idle timeout", base + "idle_timeout: -1s\n",
			"duration -1s is negative at idle_timeout"},
		{"file log without path", base + "access_log: [{name: f, typed_config: {'@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog}}]\n",
			"value is required at access_log[0].typed_config.path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectParseError(t, tt.doc, tt.want) })
	}
}

func TestValidateAcceptsRetryPolicies(t *testing.T) {
	for _, fields := range []string{
		"timeout: 0s",
		"timeout: 2s",
		"retry_policy: {retry_on: reset}",
		"retry_policy: {retry_on: ' connect-failure ,reset,per-try-timeout ,  server-failure '}",
		"retry_policy: {retry_on: 'reset, reset'}",
		"retry_policy: {retry_on: reset, num_retries: 0}",
		"retry_policy: {retry_on: reset, num_retries: 10}",
		"timeout: 2s\n      retry_policy: {retry_on: per-try-timeout, per_try_timeout: 2s}",
		// A zero timeout sets no route limit, so any per-try timeout fits.
		"timeout: 0s\n      retry_policy: {retry_on: per-try-timeout, per_try_timeout: 5s}",
		"retry_policy: {retry_on: per-try-timeout, per_try_timeout: 5s}",
		"timeout: 1s\n      retry_policy: {retry_on: reset, per_try_timeout: 0s}",
	} {
		doc := strings.Replace(base, "      cluster: c0\n", "      cluster: c0\n      "+fields+"\n", 1)
		if _, err := ParseProxy([]byte(doc)); err != nil {
			t.Errorf("%s: %v", fields, err)
		}
	}
}

func TestValidateRouteConfigurationRetryPath(t *testing.T) {
	_, err := ParseRouteConfiguration([]byte("routes: [{route: {cluster: a, retry_policy: {retry_on: 'reset, gateway-error'}}}]"))
	const want = `route_configuration: unknown condition "gateway-error"; valid conditions are connect-failure, reset, per-try-timeout, server-failure at routes[0].route.retry_policy.retry_on`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil); err == nil {
		t.Error("Validate(nil) passed")
	}
	if err := ValidateRouteConfiguration(nil); err == nil {
		t.Error("ValidateRouteConfiguration(nil) passed")
	}
}

func TestValidateAcceptsBase(t *testing.T) {
	p := &v1alpha.MetaProtocolProxy{}
	if err := Unmarshal([]byte(base), p); err != nil {
		t.Fatal(err)
	}
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
	p.StatPrefix = ""
	if err := Validate(p); err == nil || err.Error() != "meta_protocol_proxy: value is required at stat_prefix" {
		t.Errorf("error %v", err)
	}
}

func TestProtocolPrecedence(t *testing.T) {
	newCodec := &v1alpha.Codec{Name: "new"}
	oldCodec := &v1alpha.Codec{Name: "old"}
	tests := []struct {
		name      string
		p         *v1alpha.MetaProtocolProxy
		wantName  string
		wantCodec *v1alpha.Codec
	}{
		{"nil", nil, "", nil},
		{"deprecated only", &v1alpha.MetaProtocolProxy{ApplicationProtocol: "dubbo", Codec: oldCodec}, "dubbo", oldCodec},
		{"protocol only", &v1alpha.MetaProtocolProxy{Protocol: &v1alpha.ApplicationProtocol{Name: "thrift", Codec: newCodec}}, "thrift", newCodec},
		{"protocol wins", &v1alpha.MetaProtocolProxy{ApplicationProtocol: "dubbo", Codec: oldCodec,
			Protocol: &v1alpha.ApplicationProtocol{Name: "thrift", Codec: newCodec}}, "thrift", newCodec},
		{"empty protocol fields fall back", &v1alpha.MetaProtocolProxy{ApplicationProtocol: "dubbo", Codec: oldCodec,
			Protocol: &v1alpha.ApplicationProtocol{Codec: &v1alpha.Codec{}, Multiplexing: true}}, "dubbo", oldCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ProtocolName(tt.p); got != tt.wantName {
				t.Errorf("ProtocolName = %q, want %q", got, tt.wantName)
			}
			if got := CodecOf(tt.p); got != tt.wantCodec {
				t.Errorf("CodecOf = %v, want %v", got, tt.wantCodec)
			}
		})
	}
}

func TestValidateCodecConfig(t *testing.T) {
	p := &v1alpha.MetaProtocolProxy{}
	if err := Unmarshal([]byte(base), p); err != nil {
		t.Fatal(err)
	}
	p.Protocol.Codec.Config = &anypb.Any{TypeUrl: "type.googleapis.com/aeraki.meta_protocol.codec.DubboCodec"}
	if err := Validate(p); err != nil {
		t.Errorf("empty DubboCodec config: %v", err)
	}
	p.Protocol.Codec.Config = &anypb.Any{TypeUrl: "type.googleapis.com/no.such.Codec"}
	want := `meta_protocol_proxy: unknown type "type.googleapis.com/no.such.Codec" at protocol.codec.config`
	if err := Validate(p); err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
