package config

import (
	"strings"
	"testing"
	"time"

	_ "github.com/metaproxy/metaproxy/builtin"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/proxy"
)

const bootstrap = `
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 9901 } }
node: { id: test, cluster: test }
static_resources:
  listeners:
  - name: dubbo
    address: { socket_address: { address: 0.0.0.0, port_value: 20880 } }
    per_connection_buffer_limit_bytes: 1048576
    filter_chains:
    - filters:
      - name: envoy.filters.network.meta_protocol_proxy
        typed_config:
          "@type": type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy
          stat_prefix: outbound|20880||org.apache.dubbo.samples.basic.api.demoservice
          protocol: { name: dubbo, codec: { name: aeraki.meta_protocol.codec.dubbo }, multiplexing: true }
          idle_timeout: 30s
          meta_protocol_filters: [ { name: aeraki.meta_protocol.filters.router } ]
          tracing: { client_sampling: { value: 100 } }
          route_config:
            name: test
            routes:
            - name: default-route
              match: { metadata: [ { name: interface, exact_match: org.apache.dubbo.samples.basic.api.DemoService } ] }
              route: { cluster: provider }
  clusters:
  - name: provider
    type: STRICT_DNS
    connect_timeout: 0.5s
    per_connection_buffer_limit_bytes: 32768
    load_assignment:
      cluster_name: provider
      endpoints: [ { lb_endpoints: [ { endpoint: { address: { socket_address: { address: localhost, port_value: 20881 } } } } ] } ]
`

func TestLoadBootstrap(t *testing.T) {
	b, err := LoadBootstrap([]byte(bootstrap), filter.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if b.AdminAddress != "127.0.0.1:9901" || len(b.Listeners) != 1 {
		t.Fatalf("admin %q, %d listeners", b.AdminAddress, len(b.Listeners))
	}
	l := b.Listeners[0]
	p := l.Proxy
	if l.Address != "0.0.0.0:20880" || p.Protocol != "dubbo" || !p.Multiplexing || p.IdleTimeout.Seconds() != 30 ||
		p.MaxBufferedBytes != 1<<20 || len(p.Routes.Routes) != 1 || len(p.Clusters) != 1 || p.Clusters[0].ConnectTimeout.Milliseconds() != 500 {
		t.Fatalf("listener: %+v", l)
	}
	joined := strings.Join(b.Warnings, "\n")
	for _, w := range []string{"tracing", "per_connection_buffer_limit_bytes"} {
		if !strings.Contains(joined, w) {
			t.Errorf("no warning about %s in:\n%s", w, joined)
		}
	}
}

func TestBootstrapErrors(t *testing.T) {
	cases := map[string]struct{ from, to, want string }{
		"unknown top-level field": {"node:", "nodes:", `unknown field "nodes"`},
		"typo in proxy config":    {"idle_timeout:", "idle_timeot:", `idle_timeot`},
		"typo in cluster":         {"connect_timeout:", "connect_timout:", `unknown field "connect_timout"`},
		"other network filter":    {"envoy.filters.network.meta_protocol_proxy", "envoy.filters.network.tcp_proxy", "cannot be run"},
		"unknown codec":           {"aeraki.meta_protocol.codec.dubbo", "aeraki.meta_protocol.codec.nope", `unknown codec "aeraki.meta_protocol.codec.nope"`},
		"unknown filter":          {"aeraki.meta_protocol.filters.router", "aeraki.meta_protocol.filters.nope", `unknown filter`},
		"lds":                     {"static_resources:", "dynamic_resources: {lds_config: {ads: {}}}\nstatic_resources:", "lds_config is not supported"},
		"ads source without ads":  {"static_resources:", "dynamic_resources: {cds_config: {ads: {}}}\nstatic_resources:", "no dynamic_resources.ads_config"},
		"static needs an IP":      {"type: STRICT_DNS", "type: EDS", `type "EDS" is not supported`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			y := strings.Replace(bootstrap, c.from, c.to, 1)
			_, err := LoadBootstrap([]byte(y), filter.Env{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestPluginConfig(t *testing.T) {
	value := `{
	  "stat_prefix": "dubbo",
	  "protocol": {"name": "dubbo", "codec": {"name": "aeraki.meta_protocol.codec.dubbo"}},
	  "route_config": {"name": "r", "routes": [{"route": {"cluster": "c"}}]},
	  "clusters": [{"name": "c", "type": "STATIC", "load_assignment": {"endpoints": [{"lb_endpoints": [
	    {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 20881}}}}]}]}}]
	}`
	l, err := ParsePluginConfig([]byte(value), filter.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "dubbo" || len(l.Proxy.Clusters) != 1 || l.Proxy.Clusters[0].Endpoints[0].Port != 20881 {
		t.Fatalf("%+v", l)
	}
	if _, err := ParsePluginConfig([]byte(strings.Replace(value, `"stat_prefix"`, `"stat_prefx"`, 1)), filter.Env{}); err == nil || !strings.Contains(err.Error(), "stat_prefx") {
		t.Fatalf("typo not reported: %v", err)
	}
}

func TestCodecConfig(t *testing.T) {
	y := strings.Replace(bootstrap, "codec: { name: aeraki.meta_protocol.codec.dubbo }",
		`codec: { name: aeraki.meta_protocol.codec.thrift, config: { "@type": type.googleapis.com/aeraki.meta_protocol.codec.ThriftCodec, transport: framed, oneway_methods: [ping], concurrent_clients: true } }`, 1)
	if _, err := LoadBootstrap([]byte(y), filter.Env{}); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(y, "transport: framed", "transport: smoke-signals", 1)
	if _, err := LoadBootstrap([]byte(bad), filter.Env{}); err == nil || !strings.Contains(err.Error(), "smoke-signals") {
		t.Fatalf("bad codec config: %v", err)
	}
	y = strings.Replace(bootstrap, "codec: { name: aeraki.meta_protocol.codec.dubbo }",
		`codec: { name: aeraki.meta_protocol.codec.dubbo, config: { "@type": type.googleapis.com/aeraki.meta_protocol.codec.DubboCodec, max_frame_bytes: 65536 } }`, 1)
	if _, err := LoadBootstrap([]byte(y), filter.Env{}); err != nil {
		t.Fatal(err)
	}
	y = strings.Replace(bootstrap, "codec: { name: aeraki.meta_protocol.codec.dubbo }",
		`codec: { name: aeraki.meta_protocol.codec.trpc, config: { "@type": type.googleapis.com/aeraki.meta_protocol.codec.TrpcCodec, max_frame_bytes: 8 } }`, 1)
	if _, err := LoadBootstrap([]byte(y), filter.Env{}); err == nil || !strings.Contains(err.Error(), "max_frame_bytes 8 is below") {
		t.Fatalf("a typed TrpcCodec's max_frame_bytes does not reach the codec: %v", err)
	}
}

// TestOverloadDefaults: unset, the request timeout is Envoy generic_proxy's
// 15 s and the bounds on requests in flight and buffered bytes have their
// defaults; set, they take the value, and zero disables them.
func TestOverloadDefaults(t *testing.T) {
	b, err := LoadBootstrap([]byte(bootstrap), filter.Env{})
	if err != nil {
		t.Fatal(err)
	}
	p := b.Listeners[0].Proxy
	if p.FrameReceiveTimeout != proxy.DefaultFrameReceiveTimeout {
		t.Errorf("default frame_receive_timeout %v", p.FrameReceiveTimeout)
	}
	if p.RequestTimeout != proxy.DefaultRequestTimeout || p.MaxActiveRequestsPerConnection != proxy.DefaultMaxActiveRequestsPerConnection ||
		p.MaxActiveRequests != proxy.DefaultMaxActiveRequests || p.MaxBufferedBytesTotal != proxy.DefaultMaxBufferedBytesTotal {
		t.Errorf("defaults: timeout %v, per connection %d, listener %d, bytes %d", p.RequestTimeout,
			p.MaxActiveRequestsPerConnection, p.MaxActiveRequests, p.MaxBufferedBytesTotal)
	}
	set := strings.Replace(bootstrap, "idle_timeout: 30s", "idle_timeout: 30s\n          request_timeout: 0s\n          frame_receive_timeout: 2s\n"+
		"          max_active_requests_per_connection: 7\n          max_active_requests: 0\n          max_buffered_bytes: 4096", 1)
	b, err = LoadBootstrap([]byte(set), filter.Env{})
	if err != nil {
		t.Fatal(err)
	}
	p = b.Listeners[0].Proxy
	if p.RequestTimeout != 0 || p.FrameReceiveTimeout != 2*time.Second || p.MaxActiveRequestsPerConnection != 7 || p.MaxActiveRequests != 0 || p.MaxBufferedBytesTotal != 4096 {
		t.Errorf("set: timeout %v, per connection %d, listener %d, bytes %d", p.RequestTimeout,
			p.MaxActiveRequestsPerConnection, p.MaxActiveRequests, p.MaxBufferedBytesTotal)
	}
}
