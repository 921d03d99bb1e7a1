package cluster

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustParse(t *testing.T, js string) Config {
	t.Helper()
	c, err := ParseConfig(json.RawMessage(js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return c
}

func wantError(t *testing.T, name, js, want string) {
	t.Helper()
	if _, err := ParseConfig(json.RawMessage(js)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want one containing %q", name, err, want)
	}
}

func TestParseEDS(t *testing.T) {
	c := mustParse(t, `{"name":"c","type":"EDS","eds_cluster_config":{"service_name":"svc","eds_config":{"ads":{},"initial_fetch_timeout":"2s"}}}`)
	want := &EDSConfig{ServiceName: "svc", Source: ConfigSource{ADS: true, InitialFetchTimeout: 2 * time.Second}}
	if c.Type != EDS || !reflect.DeepEqual(c.EDS, want) || len(c.Endpoints) != 0 || len(c.Warnings) != 0 {
		t.Fatalf("EDS cluster: %+v %+v", c, c.EDS)
	}
	for _, js := range []string{`{}`, `{"eds_config":{"self":{}}}`} {
		c = mustParse(t, `{"name":"c","type":"EDS","eds_cluster_config":`+js+`}`)
		want := &EDSConfig{ServiceName: "c", Source: ConfigSource{Self: true, InitialFetchTimeout: DefaultInitialFetchTimeout}}
		if !reflect.DeepEqual(c.EDS, want) {
			t.Errorf("%s: %+v", js, c.EDS)
		}
	}
	c = mustParse(t, `{"name":"c","type":"EDS","eds_cluster_config":{},`+oneEndpoint+`}`)
	if len(c.Endpoints) != 0 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "load_assignment is ignored") {
		t.Errorf("EDS cluster with a load_assignment: %+v", c)
	}
	wantError(t, "no eds_cluster_config", `{"name":"c","type":"EDS"}`, `type "EDS" is not supported without eds_cluster_config`)
	wantError(t, "eds_cluster_config of a STATIC cluster", `{"name":"c",`+oneEndpoint+`,"eds_cluster_config":{}}`, "applies to type EDS only")
	wantError(t, "REST", `{"name":"c","type":"EDS","eds_cluster_config":{"eds_config":{"api_config_source":{"api_type":"REST"}}}}`,
		`cluster "c": eds_cluster_config.eds_config: api_config_source.api_type REST is not supported`)
	if _, err := FromProto(&clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}}); err == nil ||
		!strings.Contains(err.Error(), `type "ORIGINAL_DST" is not supported`) {
		t.Errorf("ORIGINAL_DST: %v", err)
	}
}

func grpcSource(mod func(*corev3.ApiConfigSource)) *corev3.ConfigSource {
	a := &corev3.ApiConfigSource{ApiType: corev3.ApiConfigSource_GRPC, TransportApiVersion: corev3.ApiVersion_V3,
		GrpcServices: []*corev3.GrpcService{{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "xds"}}}}}
	if mod != nil {
		mod(a)
	}
	return &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_ApiConfigSource{ApiConfigSource: a}, ResourceApiVersion: corev3.ApiVersion_V3}
}

func TestParseConfigSource(t *testing.T) {
	delta := grpcSource(func(a *corev3.ApiConfigSource) { a.ApiType = corev3.ApiConfigSource_DELTA_GRPC })
	delta.InitialFetchTimeout = durationpb.New(0)
	for name, tc := range map[string]struct {
		cs   *corev3.ConfigSource
		want ConfigSource
	}{
		"nil":   {nil, ConfigSource{Self: true, InitialFetchTimeout: 15 * time.Second}},
		"self":  {&corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Self{Self: &corev3.SelfConfigSource{}}}, ConfigSource{Self: true, InitialFetchTimeout: 15 * time.Second}},
		"ads":   {&corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}, ConfigSource{ADS: true, InitialFetchTimeout: 15 * time.Second}},
		"grpc":  {grpcSource(nil), ConfigSource{Cluster: "xds", InitialFetchTimeout: 15 * time.Second}},
		"delta": {delta, ConfigSource{Cluster: "xds", Delta: true}},
		"aggregated": {grpcSource(func(a *corev3.ApiConfigSource) { a.ApiType = corev3.ApiConfigSource_AGGREGATED_DELTA_GRPC }),
			ConfigSource{Cluster: "xds", Delta: true, InitialFetchTimeout: 15 * time.Second}},
	} {
		got, err := ParseConfigSource(tc.cs)
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", name, got, err, tc.want)
		}
	}
	v2 := grpcSource(nil)
	v2.ResourceApiVersion = corev3.ApiVersion_V2
	for name, tc := range map[string]struct {
		cs   *corev3.ConfigSource
		want string
	}{
		"empty":            {&corev3.ConfigSource{}, "no config source"},
		"path":             {&corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Path{Path: "/eds.yaml"}}, "file-based config sources are not supported"},
		"path source":      {&corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{Path: "/x"}}}, "path_config_source"},
		"REST":             {grpcSource(func(a *corev3.ApiConfigSource) { a.ApiType = corev3.ApiConfigSource_REST }), "api_config_source.api_type REST is not supported"},
		"no api_type":      {grpcSource(func(a *corev3.ApiConfigSource) { a.ApiType = 0 }), "api_config_source.api_type DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE is not supported"},
		"transport V2":     {grpcSource(func(a *corev3.ApiConfigSource) { a.TransportApiVersion = corev3.ApiVersion_V2 }), "api_config_source.transport_api_version V2 is not supported"},
		"resource V2":      {v2, "resource_api_version V2 is not supported"},
		"cluster_names":    {grpcSource(func(a *corev3.ApiConfigSource) { a.ClusterNames = []string{"xds"} }), "api_config_source.cluster_names is for REST"},
		"no services":      {grpcSource(func(a *corev3.ApiConfigSource) { a.GrpcServices = nil }), "api_config_source.grpc_services: one envoy_grpc service is needed"},
		"two services":     {grpcSource(func(a *corev3.ApiConfigSource) { a.GrpcServices = append(a.GrpcServices, a.GrpcServices[0]) }), "2 services"},
		"no cluster name":  {grpcSource(func(a *corev3.ApiConfigSource) { a.GrpcServices[0].GetEnvoyGrpc().ClusterName = "" }), "envoy_grpc.cluster_name is needed"},
		"negative timeout": {&corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{}, InitialFetchTimeout: durationpb.New(-time.Second)}, "initial_fetch_timeout: negative"},
		"google_grpc": {grpcSource(func(a *corev3.ApiConfigSource) {
			a.GrpcServices[0].TargetSpecifier = &corev3.GrpcService_GoogleGrpc_{GoogleGrpc: &corev3.GrpcService_GoogleGrpc{TargetUri: "xds:1"}}
		}), "api_config_source.grpc_services[0].google_grpc is not supported: use envoy_grpc"},
	} {
		if _, err := ParseConfigSource(tc.cs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	// The JSON forms, through a cluster.
	c := mustParse(t, `{"name":"c","type":"EDS","eds_cluster_config":{"eds_config":{"resource_api_version":"V3","api_config_source":{
	  "api_type":"DELTA_GRPC","transport_api_version":"V3","grpc_services":[{"envoy_grpc":{"cluster_name":"xds"}}]}}}}`)
	if c.EDS.Source != (ConfigSource{Cluster: "xds", Delta: true, InitialFetchTimeout: 15 * time.Second}) {
		t.Errorf("api_config_source from JSON: %+v", c.EDS.Source)
	}
}

func TestParseHTTP2(t *testing.T) {
	const hpo = `"typed_extension_protocol_options":{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions":{
	  "@type":"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",`
	for name, tc := range map[string]struct {
		fields string
		http2  bool
		warns  int
	}{
		"none":                   {`"lb_policy":"ROUND_ROBIN"`, false, 0},
		"http2_protocol_options": {`"http2_protocol_options":{}`, true, 0},
		"HttpProtocolOptions":    {hpo + `"explicit_http_config":{"http2_protocol_options":{}}}}`, true, 0},
		"HTTP/1":                 {hpo + `"explicit_http_config":{"http_protocol_options":{}}}}`, false, 1},
		"common options only":    {hpo + `"common_http_protocol_options":{"idle_timeout":"60s"}}}`, false, 1},
		"another key":            {`"typed_extension_protocol_options":{"envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions":{"@type":"type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions","idle_timeout":"1s"}}`, false, 1},
		"a type not linked in":   {`"typed_extension_protocol_options":{"envoy.filters.network.thrift_proxy":{"@type":"type.googleapis.com/envoy.extensions.filters.network.thrift_proxy.v3.ThriftProtocolOptions","transport":"FRAMED"}}`, false, 1},
		"both forms":             {`"http2_protocol_options":{},` + hpo + `"explicit_http_config":{"http2_protocol_options":{}}}}`, true, 0},
	} {
		c, err := parse(t, tc.fields)
		if err != nil || c.HTTP2 != tc.http2 || len(c.Warnings) != tc.warns {
			t.Errorf("%s: HTTP2 %v, warnings %q, %v", name, c.HTTP2, c.Warnings, err)
			continue
		}
		if tc.warns == 1 && c.Warnings[0] != `cluster "c": field "typed_extension_protocol_options" is not implemented yet and is ignored` {
			t.Errorf("%s: warning %q", name, c.Warnings[0])
		}
	}
	if _, err := parse(t, hpo+`"explicit_http_config":{"http2_protocol_options":{"max_concurent_streams":1}}}}`); err == nil ||
		!strings.Contains(err.Error(), `explicit_http_config.http2_protocol_options: unknown field "max_concurent_streams"`) {
		t.Errorf("typo inside HttpProtocolOptions: %v", err)
	}
}

func TestParseUnknownFieldsNamed(t *testing.T) {
	for name, tc := range map[string]struct{ js, want string }{
		"top level":   {`{"name":"c","bogus":1}`, `cluster "c": unknown field "bogus"`},
		"no name yet": {`{"bogus":1}`, `cluster: unknown field "bogus"`},
		"nested": {`{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"1.2.3.4","port":1}}}}]}]}}`,
			`cluster "c": load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address: unknown field "port"`},
		"camelCase":       {`{"name":"c","connectTimeout":"1s"}`, `unknown field "connectTimeout"`},
		"known, not run":  {`{"name":"c",` + oneEndpoint + `,"dns_jitter":"1s"}`, `cluster "c": field "dns_jitter" is not supported`},
		"subsets":         {`{"name":"c",` + oneEndpoint + `,"lb_subset_config":{}}`, "subset load balancing is not supported yet"},
		"wrong @type":     {`{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"c"}`, `is not type.googleapis.com/envoy.config.cluster.v3.Cluster`},
		"unknown Any":     {`{"name":"c",` + oneEndpoint + `,"transport_socket":{"typed_config":{"@type":"type.googleapis.com/acme.Tls"}}}`, `transport_socket.typed_config: unknown type "type.googleapis.com/acme.Tls"`},
		"not an object":   {`[]`, "cluster: not an object"},
		"trailing data":   {`{"name":"c"} {}`, "data after"},
		"bad enum number": {`{"name":"c","lb_policy":4}`, `lb_policy: 4 is not one of ROUND_ROBIN`},
	} {
		wantError(t, name, tc.js, tc.want)
	}
}

func TestParseDurationForms(t *testing.T) {
	for js, want := range map[string]time.Duration{
		`"1.5s"`: 1500 * time.Millisecond, `"250ms"`: 250 * time.Millisecond, `"1m"`: time.Minute,
		`{"seconds":2,"nanos":5}`: 2*time.Second + 5, `"0s"`: 0,
	} {
		c, err := parse(t, `"connect_timeout":`+js)
		if err != nil || c.ConnectTimeout != want {
			t.Errorf("%s: %v, %v", js, c.ConnectTimeout, err)
		}
		if d, err := ParseDuration(json.RawMessage(js)); err != nil || d != want {
			t.Errorf("ParseDuration(%s) = %v, %v", js, d, err)
		}
	}
	for _, js := range []string{`"-1s"`, `5`, `"soon"`, `{"secs":1}`} {
		if _, err := parse(t, `"connect_timeout":`+js); err == nil || !strings.Contains(err.Error(), "connect_timeout") {
			t.Errorf("%s: %v", js, err)
		}
	}
	if _, err := FromProto(&clusterv3.Cluster{Name: "c", ConnectTimeout: durationpb.New(-time.Second)}); err == nil || !strings.Contains(err.Error(), "connect_timeout: negative") {
		t.Errorf("negative connect_timeout: %v", err)
	}
}

// A cluster from CDS converts as its JSON does.
func TestFromProtoMatchesJSON(t *testing.T) {
	pb := &clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		ConnectTimeout: durationpb.New(time.Second), LbPolicy: clusterv3.Cluster_MAGLEV,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{Endpoints: []*endpointv3.LocalityLbEndpoints{
			{LbEndpoints: []*endpointv3.LbEndpoint{lbEndpoint("localhost", 90, 0)}}}},
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(1024)}
	got, err := FromProto(pb)
	if err != nil {
		t.Fatal(err)
	}
	want := mustParse(t, `{"name":"c","type":"STRICT_DNS","connect_timeout":"1s","lb_policy":"MAGLEV","per_connection_buffer_limit_bytes":1024,
	  "load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"localhost","port_value":90}}}}]}]}}`)
	if !reflect.DeepEqual(got, want) || len(got.Warnings) != 1 {
		t.Errorf("from the proto %+v\nfrom JSON %+v", got, want)
	}
	if _, err := FromProto(nil); err == nil || err.Error() != "cluster: a cluster needs a name" {
		t.Errorf("nil: %v", err)
	}
}

// An EDS cluster starts empty, without DNS refresh, and takes its endpoints
// through Update.
func TestNewEDSCluster(t *testing.T) {
	cfg := mustParse(t, `{"name":"c","type":"EDS","eds_cluster_config":{"eds_config":{"ads":{}}}}`)
	c := hosts(t, cfg)
	if len(c.Hosts()) != 0 || c.Pick(time.Now(), nil) != nil || c.cancel != nil {
		t.Fatalf("new EDS cluster: %d hosts, DNS refresh %v", len(c.Hosts()), c.cancel != nil)
	}
	if err := c.Update([]Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}, {Host: "10.0.0.2", Port: 1, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if len(c.Hosts()) != 2 || c.Pick(time.Now(), nil) == nil {
		t.Fatalf("after Update: %d hosts", len(c.Hosts()))
	}
	if err := c.Update(nil); err != nil || len(c.Hosts()) != 0 || c.Pick(time.Now(), nil) != nil {
		t.Fatalf("emptied: %d hosts, %v", len(c.Hosts()), err)
	}
}
