package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xdstype "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/metaproxy/metaproxy/api/v1alpha"
)

const (
	udpaTypedStructURL = "type.googleapis.com/udpa.type.v1.TypedStruct"
	xdsTypedStructURL  = "type.googleapis.com/xds.type.v3.TypedStruct"
)

// example is what a test expects of one Aeraki example config.
type example struct {
	file         string
	protocol     string
	codec        string
	multiplexing bool
	filters      []string
	route0       string // cluster of the first static route; "" under RDS
}

var examples = []example{
	{"dubbo.yaml", "dubbo", "aeraki.meta_protocol.codec.dubbo", true,
		[]string{"aeraki.meta_protocol.filters.metadata_exchange", "aeraki.meta_protocol.filters.istio_stats", "aeraki.meta_protocol.filters.router"},
		"outbound|20880||org.apache.dubbo.samples.basic.api.demoservice"},
	{"thrift.yaml", "thrift", "aeraki.meta_protocol.codec.thrift", false,
		[]string{"aeraki.meta_protocol.filters.router"}, "outbound|9090||thrift-sample-server.thrift.svc.cluster.local"},
	{"rds.yaml", "dubbo", "aeraki.meta_protocol.codec.dubbo", false,
		[]string{"aeraki.meta_protocol.filters.router"}, ""},
	{"global_ratelimit.yaml", "thrift", "aeraki.meta_protocol.codec.thrift", false,
		[]string{"aeraki.meta_protocol.filters.ratelimit", "aeraki.meta_protocol.filters.router"}, "outbound|9090||thrift-sample-server.meta-thrift.svc.cluster.local"},
	{"idle_timeout.yaml", "brpc", "aeraki.meta_protocol.codec.brpc", false,
		[]string{"aeraki.meta_protocol.filters.router"}, "outbound|20000||demo.brpc.server"},
	{"trpc.yaml", "trpc", "aeraki.meta_protocol.codec.trpc", false,
		[]string{"aeraki.meta_protocol.filters.metadata_exchange", "aeraki.meta_protocol.filters.istio_stats", "aeraki.meta_protocol.filters.router"}, "trpc.test.helloworld"},
	{"hash_policy.yaml", "thrift", "aeraki.meta_protocol.codec.thrift", false,
		[]string{"aeraki.meta_protocol.filters.router"}, "outbound|9090||thrift-sample-server.thrift.svc.cluster.local"},
	{"retry_policy.yaml", "dubbo", "aeraki.meta_protocol.codec.dubbo", false,
		[]string{"aeraki.meta_protocol.filters.router"}, "outbound|20880||org.apache.dubbo.samples.basic.api.demoservice"},
}

func init() {
	for _, v := range []string{"full_match_condition", "full_no_matched_condition", "no_global_bucket_match_condition",
		"no_global_bucket_no_matched_condition", "only_global_token"} {
		examples = append(examples, example{"local_ratelimit_" + v + ".yaml", "thrift", "aeraki.meta_protocol.codec.thrift", false,
			[]string{"aeraki.meta_protocol.filters.local_ratelimit", "aeraki.meta_protocol.filters.router"},
			"outbound|9090||thrift-sample-server.meta-thrift.svc.cluster.local"})
	}
}

// forms returns the example in the forms Aeraki and Envoy users write it:
// as given (typed, with @type), without @type, as JSON, and wrapped in
// udpa and xds TypedStructs, the latter with every nested typed Any also
// turned into a TypedStruct.
func forms(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{}
	for k, v := range doc {
		if k != "@type" {
			body[k] = v
		}
	}
	const proxyURL = "type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy"
	return map[string][]byte{
		"typed":      data,
		"plain":      mustYAML(t, body),
		"json":       mustJSON(t, doc),
		"udpa":       mustYAML(t, map[string]any{"@type": udpaTypedStructURL, "type_url": proxyURL, "value": body}),
		"xds_nested": mustJSON(t, map[string]any{"@type": xdsTypedStructURL, "typeUrl": proxyURL, "value": toTypedStructs(body, xdsTypedStructURL)}),
	}
}

// toTypedStructs rewrites every object with an @type into a TypedStruct of
// kind ts holding the same fields.
func toTypedStructs(v any, ts string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = toTypedStructs(e, ts)
		}
		if url, ok := out["@type"].(string); ok {
			delete(out, "@type")
			return map[string]any{"@type": ts, "type_url": url, "value": out}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = toTypedStructs(e, ts)
		}
		return out
	}
	return v
}

func mustYAML(t *testing.T, v any) []byte { return mustMarshal(t, yaml.Marshal, v) }

func mustJSON(t *testing.T, v any) []byte { return mustMarshal(t, json.Marshal, v) }

func mustMarshal(t *testing.T, marshal func(any) ([]byte, error), v any) []byte {
	t.Helper()
	b, err := marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readExample(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestAerakiExamplesParse(t *testing.T) {
	for _, ex := range examples {
		t.Run(strings.TrimSuffix(ex.file, ".yaml"), func(t *testing.T) {
			var want []json.RawMessage // filter configs of the typed form
			for _, form := range []string{"typed", "plain", "json", "udpa", "xds_nested"} {
				p, err := ParseProxy(forms(t, readExample(t, ex.file))[form])
				if err != nil {
					t.Fatalf("%s form: %v", form, err)
				}
				checkExample(t, form, ex, p)
				var got []json.RawMessage
				for _, f := range p.GetMetaProtocolFilters() {
					js, err := ConfigJSON(f.GetConfig())
					if err != nil {
						t.Fatalf("%s form: filter %s: %v", form, f.GetName(), err)
					}
					got = append(got, js)
				}
				if want == nil {
					want = got
					continue
				}
				for i := range want {
					if string(got[i]) != string(want[i]) {
						t.Errorf("%s form: filter %d config = %s, typed form gives %s", form, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func checkExample(t *testing.T, form string, ex example, p *v1alpha.MetaProtocolProxy) {
	t.Helper()
	if got := ProtocolName(p); got != ex.protocol {
		t.Errorf("%s form: protocol %q, want %q", form, got, ex.protocol)
	}
	if got := CodecOf(p).GetName(); got != ex.codec {
		t.Errorf("%s form: codec %q, want %q", form, got, ex.codec)
	}
	if got := p.GetProtocol().GetMultiplexing(); got != ex.multiplexing {
		t.Errorf("%s form: multiplexing %v, want %v", form, got, ex.multiplexing)
	}
	var names []string
	for _, f := range p.GetMetaProtocolFilters() {
		names = append(names, f.GetName())
	}
	if strings.Join(names, ",") != strings.Join(ex.filters, ",") {
		t.Errorf("%s form: filters %v, want %v", form, names, ex.filters)
	}
	if ex.route0 == "" {
		if p.GetRds().GetRouteConfigName() == "" {
			t.Errorf("%s form: no RDS route_config_name", form)
		}
		return
	}
	if routes := p.GetRouteConfig().GetRoutes(); len(routes) == 0 || routes[0].GetRoute().GetCluster() != ex.route0 {
		t.Errorf("%s form: routes %v, want a first route to %q", form, routes, ex.route0)
	}
}

func TestDubboExampleDetails(t *testing.T) {
	p, err := ParseProxy(readExample(t, "dubbo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	r := p.GetRouteConfig().GetRoutes()[0]
	if got := r.GetMatch().GetMetadata()[0].GetExactMatch(); got != "org.apache.dubbo.samples.basic.api.DemoService" {
		t.Errorf("first matcher exact_match = %q", got)
	}
	mirror := r.GetRoute().GetRequestMirrorPolicies()[0]
	if n := mirror.GetRuntimeFraction().GetDefaultValue().GetNumerator(); n != 50 {
		t.Errorf("mirror numerator = %d, want 50", n)
	}
	if len(r.GetRequestMutation()) != 2 || r.GetRequestMutation()[1].GetValue() != "bar1" {
		t.Errorf("request_mutation = %v", r.GetRequestMutation())
	}
	if v := p.GetTracing().GetRandomSampling().GetValue(); v != 100 {
		t.Errorf("random_sampling = %v, want 100", v)
	}
	js, err := ConfigJSON(p.GetAccessLog()[0].GetTypedConfig())
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Path      string `json:"path"`
		LogFormat struct {
			TextFormatSource struct {
				InlineString string `json:"inline_string"`
			} `json:"text_format_source"`
		} `json:"log_format"`
	}
	if err := json.Unmarshal(js, &log); err != nil {
		t.Fatal(err)
	}
	if log.Path != "/dev/stdout" || !strings.Contains(log.LogFormat.TextFormatSource.InlineString, "%REQ(INTERFACE)%") {
		t.Errorf("access log config = %s", js)
	}
}

func TestDurations(t *testing.T) {
	p, err := ParseProxy(readExample(t, "idle_timeout.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.GetIdleTimeout().AsDuration(); got != 5*time.Second {
		t.Errorf("idle_timeout = %v, want 5s", got)
	}
	p, err = ParseProxy(readExample(t, "rds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.GetRds().GetConfigSource().GetApiConfigSource().GetRequestTimeout().AsDuration(); got != 10*time.Second {
		t.Errorf("request_timeout = %v, want 10s", got)
	}
	example := string(readExample(t, "idle_timeout.yaml"))
	withTimeout := func(v string) []byte {
		return []byte(strings.Replace(example, "idle_timeout: 5s", "idle_timeout: "+v, 1))
	}
	for in, want := range map[string]time.Duration{"1.5s": 1500 * time.Millisecond, "100ms": 100 * time.Millisecond, "1m30s": 90 * time.Second, "0s": 0} {
		p, err := ParseProxy(withTimeout(in))
		if err != nil {
			t.Errorf("idle_timeout %q: %v", in, err)
			continue
		}
		if got := p.GetIdleTimeout().AsDuration(); got != want {
			t.Errorf("idle_timeout %q = %v, want %v", in, got, want)
		}
	}
	for _, bad := range []string{"5x", "-1s", "5", "1h-"} {
		if _, err := ParseProxy(withTimeout(bad)); err == nil || !strings.Contains(err.Error(), "idle_timeout") {
			t.Errorf("idle_timeout %q: error %v, want one naming idle_timeout", bad, err)
		}
	}
}

func TestRetryPolicyExample(t *testing.T) {
	for form, data := range forms(t, readExample(t, "retry_policy.yaml")) {
		p, err := ParseProxy(data)
		if err != nil {
			t.Fatalf("%s form: %v", form, err)
		}
		routes := p.GetRouteConfig().GetRoutes()
		a := routes[0].GetRoute()
		if got := a.GetTimeout().AsDuration(); got != 3*time.Second {
			t.Errorf("%s form: timeout = %v, want 3s", form, got)
		}
		rp := a.GetRetryPolicy()
		if rp.GetNumRetries() == nil || rp.GetNumRetries().GetValue() != 2 {
			t.Errorf("%s form: num_retries = %v, want 2", form, rp.GetNumRetries())
		}
		if got := rp.GetPerTryTimeout().AsDuration(); got != time.Second {
			t.Errorf("%s form: per_try_timeout = %v, want 1s", form, got)
		}
		if got := rp.GetRetryOn(); got != "connect-failure, reset, per-try-timeout, server-failure" {
			t.Errorf("%s form: retry_on = %q", form, got)
		}
		// The second route leaves num_retries unset (the router's default
		// of 1 applies) and has no timeout.
		a = routes[1].GetRoute()
		if a.GetTimeout() != nil || a.GetRetryPolicy().GetNumRetries() != nil || a.GetRetryPolicy().GetRetryOn() != "connect-failure" {
			t.Errorf("%s form: second route = %v", form, a)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, ex := range examples {
		t.Run(strings.TrimSuffix(ex.file, ".yaml"), func(t *testing.T) {
			p, err := ParseProxy(readExample(t, ex.file))
			if err != nil {
				t.Fatal(err)
			}
			js, err := MarshalJSON(p)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseProxy(js)
			if err != nil {
				t.Fatalf("reading back %s: %v", js, err)
			}
			if !proto.Equal(p, back) {
				t.Errorf("JSON round trip changed the config:\n%v\n%v", p, back)
			}
			bin, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			fromWire := &v1alpha.MetaProtocolProxy{}
			if err := proto.Unmarshal(bin, fromWire); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(p, fromWire) {
				t.Errorf("binary round trip changed the config")
			}
		})
	}
}

func TestProxyFromAny(t *testing.T) {
	typed, err := ParseProxy(readExample(t, "dubbo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := anypb.New(typed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ProxyFromAny(a)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, typed) {
		t.Errorf("typed Any: got %v", got)
	}
	body, err := MarshalJSON(typed)
	if err != nil {
		t.Fatal(err)
	}
	value := &structpb.Struct{}
	if err := protojson.Unmarshal(body, value); err != nil {
		t.Fatal(err)
	}
	ts, err := anypb.New(&xdstype.TypedStruct{TypeUrl: "type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy", Value: value})
	if err != nil {
		t.Fatal(err)
	}
	got, err = ProxyFromAny(ts)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, typed) {
		t.Errorf("TypedStruct: got %v", got)
	}
	bad := proto.Clone(typed).(*v1alpha.MetaProtocolProxy)
	bad.StatPrefix = ""
	if a, err = anypb.New(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := ProxyFromAny(a); err == nil || !strings.Contains(err.Error(), "at stat_prefix") {
		t.Errorf("invalid config: error %v", err)
	}
	if _, err := ProxyFromAny(nil); err == nil {
		t.Error("nil Any passed")
	}
}
