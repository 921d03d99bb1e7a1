package metadataexchange_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
	mx "github.com/metaproxy/metaproxy/filters/metadataexchange"
)

// istioHeader builds an x-envoy-peer-metadata value the way Istio's (and
// Aeraki's) metadata exchange does: the standard base64 of a serialized
// google.protobuf.Struct of the node metadata.
func istioHeader(t testing.TB, md map[string]any) string {
	t.Helper()
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

var serverMeta = map[string]any{
	"NAME": "reviews-v2-5d8f-x2k", "NAMESPACE": "bookinfo", "WORKLOAD_NAME": "reviews-v2",
	"CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local", "SERVICE_ACCOUNT": "bookinfo-reviews",
	"LABELS": map[string]any{"app": "reviews", "version": "v2",
		"service.istio.io/canonical-name": "reviews", "service.istio.io/canonical-revision": "v2"},
	"PROXY_CONFIG": map[string]any{"concurrency": 2.0}, // not exchanged
}

func node(t testing.TB, id string, md map[string]any) mx.Node {
	s, err := structpb.NewStruct(md)
	if err != nil {
		t.Fatal(err)
	}
	return mx.Node{ID: id, Metadata: s}
}

// testNode is the node the next filter of a test is built with
// (filter.Env.Node), set by setTestNode.
var testNode json.RawMessage

func setTestNode(t testing.TB, id string, md map[string]any) {
	js, err := json.Marshal(map[string]any{"id": id, "metadata": md})
	if err != nil {
		t.Fatal(err)
	}
	testNode = js
}

func newFilter(t *testing.T, h *filtertest.Harness, prefix string) *mx.Filter {
	t.Helper()
	env := h.Env
	env.Node = testNode
	env.StatPrefix = prefix
	f, err := mx.New(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	return f.(*mx.Filter)
}

func TestDirectionOf(t *testing.T) {
	for prefix, want := range map[string]mx.Direction{
		"inbound|20880||": mx.Inbound, "INBOUND_x": mx.Inbound, "outbound|20880||svc": mx.Outbound,
		"traffic": mx.Outbound, "": mx.Outbound, "inbo": mx.Outbound,
	} {
		if got := mx.DirectionOf(prefix); got != want {
			t.Errorf("DirectionOf(%q) = %v, want %v", prefix, got, want)
		}
	}
}

func TestParseNode(t *testing.T) {
	n, err := mx.ParseNode([]byte(`{"id":"sidecar~10.0.0.1~a.ns~ns.svc.cluster.local","cluster":"a.ns","locality":{"zone":"z"},
		"metadata":{"NAMESPACE":"ns","LABELS":{"app":"a"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := mx.PeerOf(n.Metadata, n.ID)
	if n.Cluster != "a.ns" || p.ID != "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local" || p.Namespace != "ns" || p.App != "a" {
		t.Errorf("node %+v, peer %+v", n, p)
	}
	for _, bad := range []string{`{"idd":"x"}`, `{"metadata":3}`, `[]`} {
		if _, err := mx.ParseNode([]byte(bad)); err == nil {
			t.Errorf("ParseNode(%s): no error", bad)
		}
	}
	rest, np, err := mx.ExtractNode([]byte(`{"stat_prefix":"s","node":{"id":"n1"}}`))
	if err != nil || np == nil || np.ID != "n1" || string(rest) != `{"stat_prefix":"s"}` {
		t.Errorf("ExtractNode: %s, %+v, %v", rest, np, err)
	}
	if rest, np, err := mx.ExtractNode([]byte(`{"stat_prefix":"s"}`)); err != nil || np != nil || string(rest) != `{"stat_prefix":"s"}` {
		t.Errorf("ExtractNode without node: %s, %+v, %v", rest, np, err)
	}
}

func TestNodeFromEnv(t *testing.T) {
	n := mx.NodeFromEnv([]string{"POD_NAME=productpage-v1-abc", "POD_NAMESPACE=bookinfo", "INSTANCE_IP=10.1.2.3",
		"SERVICE_ACCOUNT=bookinfo-productpage", "ISTIO_META_WORKLOAD_NAME=productpage-v1", "ISTIO_META_CLUSTER_ID=Kubernetes",
		`ISTIO_METAJSON_LABELS={"app":"productpage","version":"v1"}`, "PATH=/bin"})
	p := mx.PeerOf(n.Metadata, n.ID)
	want := mx.Peer{ID: "sidecar~10.1.2.3~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local", Name: "productpage-v1-abc",
		Namespace: "bookinfo", Workload: "productpage-v1", App: "productpage", Version: "v1", Cluster: "Kubernetes",
		ServiceAccount: "bookinfo-productpage"}
	if *p != want {
		t.Errorf("peer of the environment\n got %+v\nwant %+v", *p, want)
	}
}

func TestEncodeMetadataRoundTrip(t *testing.T) {
	n := node(t, "id", serverMeta)
	md, err := mx.DecodeMetadata(mx.EncodeMetadata(n.Metadata))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := md.GetFields()["PROXY_CONFIG"]; ok {
		t.Errorf("PROXY_CONFIG was exchanged")
	}
	if got := md.GetFields()["LABELS"].GetStructValue().GetFields()["app"].GetStringValue(); got != "reviews" {
		t.Errorf("LABELS.app = %q", got)
	}
	// Istio's own encoding decodes to the same peer.
	if a, b := mx.PeerOf(md, "id"), mx.PeerOf(mustDecode(t, istioHeader(t, serverMeta)), "id"); *a != *b {
		t.Errorf("ours %+v, Istio's %+v", a, b)
	}
}

func mustDecode(t *testing.T, v string) *structpb.Struct {
	t.Helper()
	md, err := mx.DecodeMetadata(v)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func headers(kvs []codec.KV) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestOutbound(t *testing.T) {
	setTestNode(t, "client-id", map[string]any{"NAMESPACE": "bookinfo", "WORKLOAD_NAME": "productpage-v1"})
	h := filtertest.New(t)
	f := newFilter(t, h, "outbound|9080||reviews.bookinfo.svc.cluster.local")
	chain := filter.NewChain([]filter.Named{{Name: mx.Name, Filter: f}}, nil)
	c := h.Send(chain, filtertest.Request("method", "sayHello"), "10.0.0.1:1")
	if !c.Allowed() {
		t.Fatalf("the request did not pass")
	}
	hs := headers(c.X.RequestHeaders)
	if hs[mx.HeaderID] != "client-id" || mx.PeerOf(mustDecode(t, hs[mx.HeaderMetadata]), "").Workload != "productpage-v1" {
		t.Errorf("request headers %v", hs)
	}
	if _, ok := mx.PeerSlot.Get(&c.X); ok {
		t.Errorf("a peer before the response")
	}
	resp := &codec.Message{Kind: codec.KindResponse}
	resp.Meta.Set(mx.HeaderMetadata, istioHeader(t, serverMeta))
	resp.Meta.Set(mx.HeaderID, "server-id")
	c.X.Response = resp
	chain.Respond(&c.X)
	p, ok := mx.PeerSlot.Get(&c.X)
	want := mx.Peer{ID: "server-id", Name: "reviews-v2-5d8f-x2k", Namespace: "bookinfo", Workload: "reviews-v2", App: "reviews",
		Version: "v2", CanonicalService: "reviews", CanonicalRevision: "v2", Cluster: "Kubernetes", Mesh: "cluster.local",
		ServiceAccount: "bookinfo-reviews"}
	if !ok || *p != want {
		t.Errorf("peer %+v, want %+v", p, want)
	}
	if len(c.X.ResponseHeaders) != 0 {
		t.Errorf("outbound added response headers %v", c.X.ResponseHeaders)
	}
}

func TestInbound(t *testing.T) {
	setTestNode(t, "server-id", serverMeta)
	h := filtertest.New(t)
	f := newFilter(t, h, "inbound|9080||")
	chain := filter.NewChain([]filter.Named{{Name: mx.Name, Filter: f}}, nil)
	req := filtertest.Request(mx.HeaderMetadata, istioHeader(t, map[string]any{"WORKLOAD_NAME": "productpage-v1", "NAMESPACE": "bookinfo"}),
		mx.HeaderID, "client-id")
	c := h.Send(chain, req, "10.0.0.1:1")
	if p, ok := mx.PeerSlot.Get(&c.X); !ok || p.Workload != "productpage-v1" || p.ID != "client-id" {
		t.Errorf("peer %+v", p)
	}
	if len(c.X.RequestHeaders) != 0 {
		t.Errorf("inbound added request headers %v", c.X.RequestHeaders)
	}
	c.X.Response = &codec.Message{Kind: codec.KindResponse}
	chain.Respond(&c.X)
	hs := headers(c.X.ResponseHeaders)
	if hs[mx.HeaderID] != "server-id" || mx.PeerOf(mustDecode(t, hs[mx.HeaderMetadata]), "").Workload != "reviews-v2" {
		t.Errorf("response headers %v", hs)
	}

	// No header, or a malformed one: no peer.
	for _, r := range []*codec.Message{filtertest.Request("method", "m"), filtertest.Request(mx.HeaderMetadata, "!!not base64")} {
		c := h.Send(chain, r, "10.0.0.1:1")
		if p, ok := mx.PeerSlot.Get(&c.X); ok {
			t.Errorf("peer %+v from %v", p, r.Meta.All())
		}
	}
	if n := h.Stats.Value("inbound|9080||.metadata_exchange.malformed_peer_metadata"); n != 1 {
		t.Errorf("malformed_peer_metadata = %d, want 1", n)
	}
}

// TestPeerCache: a header decodes once; the cached peer is the same, and
// the cache owns its key (the header's bytes may be reused).
func TestPeerCache(t *testing.T) {
	setTestNode(t, "server-id", serverMeta)
	h := filtertest.New(t)
	f := newFilter(t, h, "inbound|9080||")
	v := []byte(istioHeader(t, map[string]any{"WORKLOAD_NAME": "w1"}))
	send := func() *mx.Peer {
		c := h.Run(f, mx.HeaderMetadata, string(v))
		p, _ := mx.PeerSlot.Get(&c.X)
		return p
	}
	p1, p2 := send(), send()
	if p1 == nil || p1 != p2 {
		t.Fatalf("peers %p %p, want the same cached one", p1, p2)
	}
	var x filter.Exchange
	x.Request = filtertest.Request(mx.HeaderMetadata, string(v), mx.HeaderID, "id")
	f.OnRequest(&x) // warm
	if n := testing.AllocsPerRun(100, func() { f.OnRequest(&x) }); n != 0 {
		t.Errorf("a cache hit allocates %v times", n)
	}
	if p, _ := mx.PeerSlot.Get(&x); p == nil || p.Workload != "w1" {
		t.Errorf("peer %+v", p)
	}

	// A header in a read buffer that is reused afterwards (as the codecs'
	// metadata can be): the cached key must not change with it.
	buf := []byte(istioHeader(t, map[string]any{"WORKLOAD_NAME": "w2"}))
	orig := string(buf)
	c := h.Run(f, mx.HeaderMetadata, unsafe.String(&buf[0], len(buf)))
	p3, _ := mx.PeerSlot.Get(&c.X)
	for i := range buf {
		buf[i] = 'A'
	}
	c = h.Run(f, mx.HeaderMetadata, orig)
	if p4, _ := mx.PeerSlot.Get(&c.X); p3 == nil || p4 != p3 {
		t.Errorf("after the buffer was reused the header decoded anew (%p, %p)", p3, p4)
	}
}

func BenchmarkInboundPeerHit(b *testing.B) {
	setTestNode(b, "server-id", serverMeta)
	f, _ := mx.New(nil, filter.Env{Node: testNode, StatPrefix: "inbound|9080||"}.WithDefaults())
	var x filter.Exchange
	x.Request = filtertest.Request("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayHello",
		mx.HeaderMetadata, istioHeader(b, serverMeta), mx.HeaderID, "client-id")
	b.ReportAllocs()
	for b.Loop() {
		f.OnRequest(&x)
	}
}

func BenchmarkOutboundRequest(b *testing.B) {
	setTestNode(b, "client-id", serverMeta)
	f, _ := mx.New(nil, filter.Env{Node: testNode, StatPrefix: "outbound|9080||reviews"}.WithDefaults())
	var x filter.Exchange
	x.Request = filtertest.Request("method", "sayHello")
	b.ReportAllocs()
	for b.Loop() {
		x.RequestHeaders = x.RequestHeaders[:0]
		f.OnRequest(&x)
	}
}
