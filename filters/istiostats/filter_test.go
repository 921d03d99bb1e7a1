package istiostats_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
	"github.com/metaproxy/metaproxy/filters/istiostats"
	mx "github.com/metaproxy/metaproxy/filters/metadataexchange"
	"github.com/metaproxy/metaproxy/filters/rbac"
)

// istioHeader is an x-envoy-peer-metadata value as Istio and Aeraki build
// it: the base64 of a serialized google.protobuf.Struct.
func istioHeader(t testing.TB, md map[string]any) string {
	s, err := structpb.NewStruct(md)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

var (
	clientMeta = map[string]any{"NAME": "productpage-v1-abc", "NAMESPACE": "bookinfo", "WORKLOAD_NAME": "productpage-v1",
		"CLUSTER_ID": "east", "SERVICE_ACCOUNT": "bookinfo-productpage",
		"LABELS": map[string]any{"app": "productpage", "version": "v1"}}
	serverMeta = map[string]any{"NAME": "reviews-v2-xyz", "NAMESPACE": "reviews-ns", "WORKLOAD_NAME": "reviews-v2",
		"CLUSTER_ID": "west", "SERVICE_ACCOUNT": "bookinfo-reviews",
		"LABELS": map[string]any{"app": "reviews", "version": "v2",
			"service.istio.io/canonical-name": "reviews-canon", "service.istio.io/canonical-revision": "rev2"}}
)

// testNode is the node the next filters of a test are built with
// (filter.Env.Node), set by setNode.
var testNode json.RawMessage

func setNode(t testing.TB, id string, md map[string]any) {
	js, err := json.Marshal(map[string]any{"id": id, "metadata": md})
	if err != nil {
		t.Fatal(err)
	}
	testNode = js
}

// sidecar is metadata_exchange and istio_stats on one listener.
type sidecar struct {
	h     *filtertest.Harness
	chain *filter.Chain
	reg   *prometheus.Registry
}

func newSidecar(t *testing.T, prefix, config string) *sidecar {
	t.Helper()
	h := filtertest.New(t)
	reg := prometheus.NewRegistry()
	env := h.Env
	env.Node = testNode
	env.StatPrefix, env.Metrics = prefix, reg
	m, err := mx.New(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	var js []byte
	if config != "" {
		js = []byte(config)
	}
	s, err := istiostats.New(js, env)
	if err != nil {
		t.Fatal(err)
	}
	return &sidecar{h: h, reg: reg, chain: filter.NewChain([]filter.Named{{Name: mx.Name, Filter: m}, {Name: istiostats.Name, Filter: s}}, nil)}
}

// call runs one exchange: the request (metadata kv), the response resp
// (nil: none), then the outcome o (End is set 12 ms after the start).
func (s *sidecar) call(req *codec.Message, cluster string, resp *codec.Message, o filter.Outcome, before func(*filter.Exchange)) *filtertest.Call {
	c := s.h.Send(s.chain, req, "10.0.0.1:1234")
	c.X.Cluster = cluster
	if before != nil {
		before(&c.X)
	}
	if resp != nil {
		c.X.Response = resp
		s.chain.Respond(&c.X)
	}
	o.End = c.X.Start.Add(12 * time.Millisecond)
	c.Complete(o)
	return c
}

func dubboRequest(kv ...string) *codec.Message {
	return filtertest.Request(append([]string{"interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayHello", "dubbo", "2.0.2"}, kv...)...)
}

func response(status codec.Status, kv ...string) *codec.Message {
	m := &codec.Message{Kind: codec.KindResponse, Status: status}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Meta.Set(kv[i], kv[i+1])
	}
	return m
}

type sample struct {
	labels map[string]string
	value  float64 // a counter's value, a histogram's count
	sum    float64
}

func gather(t *testing.T, reg *prometheus.Registry, name string) []sample {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			s := sample{labels: labelMap(m)}
			if c := m.GetCounter(); c != nil {
				s.value = c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				s.value, s.sum = float64(h.GetSampleCount()), h.GetSampleSum()
			}
			out = append(out, s)
		}
	}
	return out
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func one(t *testing.T, reg *prometheus.Registry, name string) sample {
	t.Helper()
	ss := gather(t, reg, name)
	if len(ss) != 1 {
		t.Fatalf("%s: %d series, want 1: %v", name, len(ss), ss)
	}
	return ss[0]
}

func checkLabels(t *testing.T, got, want map[string]string) {
	t.Helper()
	keys := sort.StringSlice(nil)
	for k := range maps.Keys(want) {
		keys = append(keys, k)
	}
	keys.Sort()
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("label %s = %q, want %q", k, got[k], want[k])
		}
	}
	if len(got) != 24 {
		t.Errorf("%d labels, want Istio's 24: %v", len(got), got)
	}
	for k, v := range got {
		if v == "" {
			t.Errorf("label %s is empty", k)
		}
	}
}

func TestOutboundLabels(t *testing.T) {
	setNode(t, "client-id", clientMeta)
	s := newSidecar(t, "outbound|20880||org.apache.dubbo.samples.basic.api.demoservice", `{"destination_service":"ignored.outbound"}`)
	resp := response(codec.StatusOK, mx.HeaderMetadata, istioHeader(t, serverMeta), mx.HeaderID, "server-id")
	c := s.call(dubboRequest(), "outbound|20880||org.apache.dubbo.samples.basic.api.demoservice", resp,
		filter.Outcome{Status: codec.StatusOK, Tries: 1, BytesIn: 300, BytesOut: 120}, nil)
	if hs := c.X.RequestHeaders; len(hs) != 2 || hs[1].Value != "client-id" {
		t.Errorf("request headers %v", hs)
	}
	r := one(t, s.reg, "istio_requests_total")
	checkLabels(t, r.labels, map[string]string{
		"reporter":        "source",
		"source_workload": "productpage-v1", "source_workload_namespace": "bookinfo", "source_principal": "unknown",
		"source_app": "productpage", "source_version": "v1", "source_canonical_service": "productpage",
		"source_canonical_revision": "v1", "source_cluster": "east",
		"destination_workload": "reviews-v2", "destination_workload_namespace": "reviews-ns", "destination_principal": "unknown",
		"destination_app": "reviews", "destination_version": "v2", "destination_canonical_service": "reviews-canon",
		"destination_canonical_revision": "rev2", "destination_cluster": "west",
		"destination_service":           "org.apache.dubbo.samples.basic.api.demoservice",
		"destination_service_name":      "org.apache.dubbo.samples.basic.api.demoservice",
		"destination_service_namespace": "reviews-ns",
		"request_protocol":              "dubbo", "response_code": "0", "response_flags": "-", "connection_security_policy": "unknown",
	})
	if r.value != 1 {
		t.Errorf("istio_requests_total = %v", r.value)
	}
	for name, sum := range map[string]float64{"istio_request_duration_milliseconds": 12, "istio_request_bytes": 300, "istio_response_bytes": 120} {
		if h := one(t, s.reg, name); h.value != 1 || h.sum != sum || !maps.Equal(h.labels, r.labels) {
			t.Errorf("%s: count %v sum %v, want 1 and %v (labels %v)", name, h.value, h.sum, sum, h.labels)
		}
	}
}

func TestInboundLabels(t *testing.T) {
	setNode(t, "server-id", serverMeta)
	s := newSidecar(t, "inbound|20880||", `{"destination_service":"reviews.reviews-ns.svc.cluster.local"}`)
	req := dubboRequest(mx.HeaderMetadata, istioHeader(t, clientMeta), mx.HeaderID, "client-id")
	c := s.call(req, "inbound|20880||", response(codec.StatusOK), filter.Outcome{Status: codec.StatusOK, Tries: 1, BytesIn: 10, BytesOut: 20},
		func(x *filter.Exchange) {
			rbac.PeerPrincipal.Set(x, "spiffe://example.org/ns/bookinfo/sa/bookinfo-productpage")
		})
	if hs := c.X.ResponseHeaders; len(hs) != 2 || hs[1].Value != "server-id" {
		t.Errorf("response headers %v", hs)
	}
	checkLabels(t, one(t, s.reg, "istio_requests_total").labels, map[string]string{
		"reporter":        "destination",
		"source_workload": "productpage-v1", "source_workload_namespace": "bookinfo",
		"source_principal": "spiffe://example.org/ns/bookinfo/sa/bookinfo-productpage",
		"source_app":       "productpage", "source_version": "v1", "source_canonical_service": "productpage",
		"source_canonical_revision": "v1", "source_cluster": "east",
		"destination_workload": "reviews-v2", "destination_workload_namespace": "reviews-ns",
		"destination_principal": "spiffe://example.org/ns/reviews-ns/sa/bookinfo-reviews",
		"destination_app":       "reviews", "destination_version": "v2", "destination_canonical_service": "reviews-canon",
		"destination_canonical_revision": "rev2", "destination_cluster": "west",
		"destination_service":      "reviews.reviews-ns.svc.cluster.local",
		"destination_service_name": "reviews", "destination_service_namespace": "reviews-ns",
		"request_protocol": "dubbo", "response_code": "0", "response_flags": "-", "connection_security_policy": "mutual_tls",
	})
}

// TestMissingPeer: without the peer's headers its labels are "unknown".
func TestMissingPeer(t *testing.T) {
	setNode(t, "server-id", serverMeta)
	s := newSidecar(t, "inbound|20880||", "")
	s.call(filtertest.Request("method", "m", "message_type", "call"), "inbound|20880||", response(codec.StatusOK),
		filter.Outcome{Status: codec.StatusOK}, nil)
	l := one(t, s.reg, "istio_requests_total").labels
	for k, v := range l {
		if strings.HasPrefix(k, "source_") && v != "unknown" {
			t.Errorf("%s = %q, want unknown", k, v)
		}
	}
	if l["destination_service"] != "unknown" || l["destination_service_namespace"] != "reviews-ns" || l["request_protocol"] != "thrift" ||
		l["destination_workload"] != "reviews-v2" {
		t.Errorf("labels %v", l)
	}
}

// TestResponseCodeAndFlags: response_code and response_flags per outcome.
func TestResponseCodeAndFlags(t *testing.T) {
	setNode(t, "client-id", clientMeta)
	s := newSidecar(t, "outbound|20880||svc", "")
	peer := func() *codec.Message { return response(codec.StatusOK, mx.HeaderMetadata, istioHeader(t, serverMeta)) }
	cases := []struct {
		name        string
		resp        *codec.Message
		o           filter.Outcome
		code, flags string
	}{
		{"ok", peer(), filter.Outcome{Status: codec.StatusOK}, "0", "-"},
		{"callee exception", response(codec.StatusError, mx.HeaderMetadata, istioHeader(t, serverMeta)), filter.Outcome{Status: codec.StatusError}, "1", "-"},
		{"no route", nil, filter.Outcome{Local: true, ErrorType: codec.ErrRouteNotFound}, "1", "NR"},
		{"upstream down", nil, filter.Outcome{Local: true, ErrorType: codec.ErrUnavailable, Tries: 1}, "1", "UF"},
		{"timeout", nil, filter.Outcome{Local: true, ErrorType: codec.ErrTimeout, Tries: 1}, "1", "UT"},
		{"rate limited", nil, filter.Outcome{Local: true, ErrorType: codec.ErrOverloaded, Flags: filter.FlagRateLimited}, "1", "RL"},
		{"client gone", nil, filter.Outcome{ClientGone: true}, "1", "DC"},
		{"oneway", nil, filter.Outcome{Oneway: true}, "0", "-"},
	}
	for range 3 { // the second and third rounds hit the cache
		for _, tc := range cases {
			resp := tc.resp
			if resp != nil {
				r := *resp
				resp = &r
			}
			s.call(dubboRequest(), "outbound|20880||svc", resp, tc.o, nil)
		}
	}
	type cf struct{ code, flags string }
	got := map[cf]float64{}
	for _, smp := range gather(t, s.reg, "istio_requests_total") {
		got[cf{smp.labels["response_code"], smp.labels["response_flags"]}] += smp.value
	}
	want := map[cf]float64{}
	for _, tc := range cases {
		want[cf{tc.code, tc.flags}] += 3
	}
	if !maps.Equal(got, want) {
		t.Errorf("istio_requests_total by (code, flags) = %v, want %v", got, want)
	}
	// One series per case: the peer is known for the upstream's answers only.
	if n, err := testutil.GatherAndCount(s.reg, "istio_request_duration_milliseconds"); err != nil || n != len(cases) {
		t.Errorf("%d duration series (%v), want %d", n, err, len(cases))
	}
	var total float64
	for _, h := range gather(t, s.reg, "istio_request_duration_milliseconds") {
		total += h.value
	}
	if total != float64(3*len(cases)) {
		t.Errorf("duration histogram counted %v calls, want %d", total, 3*len(cases))
	}
}

// TestSharedRegistry: two istio_stats of one listener share the metrics.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	env := filter.Env{Node: testNode, StatPrefix: "outbound|1||a", Metrics: reg}.WithDefaults()
	for range 2 {
		if _, err := istiostats.New(nil, env); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := istiostats.New([]byte(`{"destination_servic":"x"}`), env); err == nil {
		t.Errorf("an unknown field was accepted")
	}
}

// TestNoAllocOnHit: recording an exchange whose label set is cached
// neither locks nor allocates.
func TestNoAllocOnHit(t *testing.T) {
	setNode(t, "client-id", clientMeta)
	f, x := benchSetup(t)
	if n := testing.AllocsPerRun(200, func() { f.OnComplete(x) }); n != 0 {
		t.Errorf("OnComplete allocates %v times on a hit", n)
	}
}

func benchSetup(t testing.TB) (filter.Completer, *filter.Exchange) {
	reg := prometheus.NewRegistry()
	env := filter.Env{Node: testNode, StatPrefix: "outbound|20880||org.apache.dubbo.samples.basic.api.demoservice", Metrics: reg}.WithDefaults()
	f, err := istiostats.New(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := mx.DecodeMetadata(istioHeader(t, serverMeta))
	x := &filter.Exchange{Request: dubboRequest(), Response: response(codec.StatusOK),
		Cluster: "outbound|20880||org.apache.dubbo.samples.basic.api.demoservice", Start: time.Now()}
	mx.PeerSlot.Set(x, mx.PeerOf(md, "server-id"))
	x.Outcome = filter.Outcome{End: x.Start.Add(3 * time.Millisecond), Status: codec.StatusOK, BytesIn: 200, BytesOut: 100}
	c := f.(filter.Completer)
	c.OnComplete(x) // builds the series
	return c, x
}

func BenchmarkOnCompleteHit(b *testing.B) {
	setNode(b, "client-id", clientMeta)
	f, x := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		f.OnComplete(x)
	}
}

func BenchmarkOnCompleteHitParallel(b *testing.B) {
	setNode(b, "client-id", clientMeta)
	f, x0 := benchSetup(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		x := &filter.Exchange{Request: x0.Request, Response: x0.Response, Cluster: x0.Cluster, Start: x0.Start, Outcome: x0.Outcome}
		p, _ := mx.PeerSlot.Get(x0)
		mx.PeerSlot.Set(x, p)
		for pb.Next() {
			f.OnComplete(x)
		}
	})
}
