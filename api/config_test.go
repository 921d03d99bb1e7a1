package api

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	udpatype "github.com/cncf/xds/go/udpa/type/v1"
	xdstype "github.com/cncf/xds/go/xds/type/v3"

	"github.com/metaproxy/metaproxy/api/codecconfig"
	"github.com/metaproxy/metaproxy/api/envoy"
	localratelimitv1alpha "github.com/metaproxy/metaproxy/api/filters/local_ratelimit/v1alpha"
	routerv1alpha "github.com/metaproxy/metaproxy/api/filters/router/v1alpha"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustStruct(t *testing.T, v map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigJSON(t *testing.T) {
	lrl := &localratelimitv1alpha.LocalRateLimit{
		StatPrefix:  "s",
		TokenBucket: &envoy.TokenBucket{MaxTokens: 2, FillInterval: durationpb.New(30e9)},
	}
	const lrlJSON = `{"stat_prefix":"s","token_bucket":{"max_tokens":2,"fill_interval":"30s"}}`
	const lrlURL = "type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit"
	camel := map[string]any{"statPrefix": "s", "tokenBucket": map[string]any{"maxTokens": 2, "fillInterval": "30s"}}
	tests := []struct {
		name string
		in   *anypb.Any
		want string
	}{
		{"nil", nil, ""},
		{"empty message", mustAny(t, &routerv1alpha.Router{}), "{}"},
		{"codec config", mustAny(t, &codecconfig.DubboCodec{}), "{}"},
		{"typed message", mustAny(t, lrl), lrlJSON},
		{"udpa TypedStruct of a known type", mustAny(t, &udpatype.TypedStruct{TypeUrl: lrlURL, Value: mustStruct(t, camel)}), lrlJSON},
		{"xds TypedStruct of a known type", mustAny(t, &xdstype.TypedStruct{TypeUrl: lrlURL, Value: mustStruct(t, camel)}), lrlJSON},
		{"TypedStruct of an unknown type", mustAny(t, &xdstype.TypedStruct{TypeUrl: "type.googleapis.com/acme.Codec",
			Value: mustStruct(t, map[string]any{"zKey": "v", "aKey": []any{1, "x"}})}), `{"aKey":[1,"x"],"zKey":"v"}`},
		{"TypedStruct without value", mustAny(t, &udpatype.TypedStruct{TypeUrl: "type.googleapis.com/acme.Codec"}), "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigJSON(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("ConfigJSON = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestConfigJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		in   *anypb.Any
		want string
	}{
		{"unknown type", &anypb.Any{TypeUrl: "type.googleapis.com/acme.Filter"}, `unknown type "type.googleapis.com/acme.Filter"`},
		{"undecodable value", &anypb.Any{TypeUrl: "type.googleapis.com/aeraki.meta_protocol.codec.DubboCodec", Value: []byte{0xff}},
			"decoding type.googleapis.com/aeraki.meta_protocol.codec.DubboCodec"},
		{"TypedStruct value with an unknown field", mustAny(t, &xdstype.TypedStruct{
			TypeUrl: "type.googleapis.com/aeraki.meta_protocol_proxy.filters.router.v1alpha.Router",
			Value:   mustStruct(t, map[string]any{"cluster": "x"})}), `unknown field "cluster" at value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigJSON(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestUnpackConfig(t *testing.T) {
	want := &localratelimitv1alpha.LocalRateLimit{StatPrefix: "s", TokenBucket: &envoy.TokenBucket{MaxTokens: 3}}
	const url = "type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit"
	for name, a := range map[string]*anypb.Any{
		"typed":       mustAny(t, want),
		"TypedStruct": mustAny(t, &udpatype.TypedStruct{TypeUrl: url, Value: mustStruct(t, map[string]any{"stat_prefix": "s", "token_bucket": map[string]any{"max_tokens": 3}})}),
	} {
		got := &localratelimitv1alpha.LocalRateLimit{StatPrefix: "stale"}
		if err := UnpackConfig(a, got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	if err := UnpackConfig(mustAny(t, &routerv1alpha.Router{}), &localratelimitv1alpha.LocalRateLimit{}); err == nil {
		t.Error("unpacking a Router into a LocalRateLimit passed")
	}
	other := mustAny(t, &udpatype.TypedStruct{TypeUrl: "type.googleapis.com/acme.X"})
	if err := UnpackConfig(other, &localratelimitv1alpha.LocalRateLimit{}); err == nil || !strings.Contains(err.Error(), "at type_url") {
		t.Errorf("TypedStruct of another type: error %v", err)
	}
	reset := &localratelimitv1alpha.LocalRateLimit{StatPrefix: "stale"}
	if err := UnpackConfig(nil, reset); err != nil || reset.GetStatPrefix() != "" {
		t.Errorf("nil config: error %v, message %v", err, reset)
	}
}

func TestUnmarshalGenericMessage(t *testing.T) {
	got := &localratelimitv1alpha.LocalRateLimit{}
	if err := Unmarshal([]byte(`{"statPrefix": "s", "conditions": {"match": {"metadata": {"name": "method", "exact_match": "x"}}}}`), got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.GetConditions()); n != 1 {
		t.Fatalf("single condition written as an object: got %d conditions", n)
	}
	if name := got.GetConditions()[0].GetMatch().GetMetadata()[0].GetName(); name != "method" {
		t.Errorf("matcher name %q", name)
	}
}
