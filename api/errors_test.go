package api

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid config that the cases below break in one place.
const base = `
stat_prefix: test
protocol:
  name: dubbo
  codec:
    name: aeraki.meta_protocol.codec.dubbo
route_config:
  name: test
  routes:
  - name: r0
    match:
      metadata:
      - name: method
        exact_match: sayHello
    route:
      cluster: c0
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown top-level field", base + "stat_prefx: x\n",
			`meta_protocol_proxy: unknown field "stat_prefx"`},
		{"unknown field in a route", strings.Replace(base, "  - name: r0\n", "  - name: r0\n    matc: {}\n", 1),
			`meta_protocol_proxy: unknown field "matc" at route_config.routes[0]`},
		{"unknown field in a matcher", strings.Replace(base, "exact_match: sayHello", "exact: sayHello", 1),
			`meta_protocol_proxy: unknown field "exact" at route_config.routes[0].match.metadata[0]`},
		{"Envoy field not mirrored", strings.Replace(base, "      cluster: c0", "      cluster: c0\n      idle_timeout: 1s", 1),
			`meta_protocol_proxy: unknown field "idle_timeout" at route_config.routes[0].route`},
		{"Envoy retry policy field not mirrored", strings.Replace(base, "      cluster: c0", "      cluster: c0\n      retry_policy: {retry_on: reset, retry_back_off: {base_interval: 1s}}", 1),
			`meta_protocol_proxy: unknown field "retry_back_off" at route_config.routes[0].route.retry_policy`},
		{"unknown field in a typed filter config", base + filterDoc("    '@type': type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit\n    stat_prefx: x\n"),
			`meta_protocol_proxy: unknown field "stat_prefx" at meta_protocol_filters[0].config`},
		{"unknown field in a TypedStruct value", base + filterDoc("    '@type': type.googleapis.com/xds.type.v3.TypedStruct\n    type_url: type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit\n    value:\n      token_bucket: {max_tokns: 1}\n"),
			`meta_protocol_proxy: unknown field "max_tokns" at meta_protocol_filters[0].config.value.token_bucket`},
		{"unknown field beside a TypedStruct", base + filterDoc("    '@type': type.googleapis.com/udpa.type.v1.TypedStruct\n    type_url: type.googleapis.com/x.Y\n    values: {}\n"),
			`meta_protocol_proxy: unknown field "values" at meta_protocol_filters[0].config`},
		{"unknown filter config type", base + filterDoc("    '@type': type.googleapis.com/foo.v1.Bar\n    a: 1\n"),
			`meta_protocol_proxy: unknown type "type.googleapis.com/foo.v1.Bar" at meta_protocol_filters[0].config`},
		{"missing @type", base + filterDoc("    a: 1\n"),
			`meta_protocol_proxy: missing "@type" at meta_protocol_filters[0].config`},
		{"unknown access log type", base + "access_log:\n- name: x\n  typed_config:\n    '@type': type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig\n",
			`meta_protocol_proxy: unknown type "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig" at access_log[0].typed_config`},
		{"document of another type", "'@type': type.googleapis.com/aeraki.meta_protocol_proxy.filters.router.v1alpha.Router\n",
			`meta_protocol_proxy: document has @type "type.googleapis.com/aeraki.meta_protocol_proxy.filters.router.v1alpha.Router", want "aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy"`},
		{"TypedStruct of another type", "'@type': type.googleapis.com/udpa.type.v1.TypedStruct\ntype_url: type.googleapis.com/aeraki.meta_protocol_proxy.filters.router.v1alpha.Router\nvalue: {}\n",
			`meta_protocol_proxy: TypedStruct holds "type.googleapis.com/aeraki.meta_protocol_proxy.filters.router.v1alpha.Router", want "aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy" at type_url`},
		{"bad duration", base + "idle_timeout: 5x\n",
			`meta_protocol_proxy: invalid google.protobuf.Duration value "5x" at idle_timeout`},
		{"bad duration in a filter config", base + filterDoc("    '@type': type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit\n    stat_prefix: s\n    conditions:\n    - token_bucket: {max_tokens: 1, fill_interval: soon}\n"),
			`meta_protocol_proxy: invalid google.protobuf.Duration value "soon" at meta_protocol_filters[0].config.conditions[0].token_bucket.fill_interval`},
		{"wrong scalar type", strings.Replace(base, "- name: method", "- name: [method]", 1),
			`at route_config.routes[0].match.metadata[0].name`},
		{"bad enum", base + "rds: {config_source: {resource_api_version: V9}}\n",
			`at rds.config_source.resource_api_version`},
		{"not YAML", "stat_prefix: [", "meta_protocol_proxy: invalid YAML: yaml: line 1"},
		{"empty", "", "meta_protocol_proxy: empty document"},
		{"not an object", "- a\n", "meta_protocol_proxy: document is not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { expectParseError(t, tt.doc, tt.want) })
	}
}

// expectParseError checks that ParseProxy rejects doc with an *Error whose
// text contains want.
func expectParseError(t *testing.T, doc, want string) {
	t.Helper()
	_, err := ParseProxy([]byte(doc))
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to contain %q", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %T does not wrap *Error", err)
	}
}

// filterDoc is a filter list with one filter whose config is the given
// YAML, indented by four spaces.
func filterDoc(config string) string {
	return "meta_protocol_filters:\n- name: f\n  config:\n" + config
}

func TestParseRouteConfiguration(t *testing.T) {
	rc, err := ParseRouteConfiguration([]byte(`
name: test
routes:
- name: split
  match:
    metadata:
    - name: method
      string_match: {safe_regex: {regex: "say.*"}}
  route:
    weighted_clusters:
      clusters:
      - {name: v1, weight: 20}
      - {name: v2, weight: 80}
`))
	if err != nil {
		t.Fatal(err)
	}
	wc := rc.GetRoutes()[0].GetRoute().GetWeightedClusters().GetClusters()
	if len(wc) != 2 || wc[1].GetName() != "v2" || wc[1].GetWeight().GetValue() != 80 {
		t.Errorf("weighted clusters = %v", wc)
	}
	_, err = ParseRouteConfiguration([]byte("name: x\nroutes:\n- route: {cluster: c}\n  mutation: []\n"))
	if want := `route_configuration: unknown field "mutation" at routes[0]`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
