// Package metadataexchange is Istio's metadata exchange for meta-protocol
// listeners (aeraki.meta_protocol.filters.metadata_exchange, Aeraki's
// MetadataExchange): the sidecars on both ends of a call tell each other
// who they are in two headers, x-envoy-peer-metadata (the base64 of a
// serialized google.protobuf.Struct of the node's Istio metadata) and
// x-envoy-peer-metadata-id (the node id). An outbound listener adds them to
// the forwarded request and learns its peer from the response; an inbound
// listener learns its peer from the request and adds them to the response.
// The peer is kept in the exchange's PeerSlot for istio_stats. The local
// node comes from filter.Env.Node (the bootstrap's or plugin_config's node)
// or Istio's environment.
// See README.md.
package metadataexchange

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// Name is the filter's name in meta_protocol_filters; Alias is Aeraki's.
const (
	Name  = "metadata_exchange"
	Alias = "aeraki.meta_protocol.filters.metadata_exchange"
)

// The exchanged headers (metadata keys).
const (
	HeaderMetadata = "x-envoy-peer-metadata"
	HeaderID       = "x-envoy-peer-metadata-id"
)

// PeerSlot holds the peer of an exchange once metadata_exchange learnt it
// (from the request on an inbound listener, from the response on an
// outbound one). The Peer is shared: read it, never change it.
var PeerSlot = filter.NewSlot[*Peer]("istio.peer")

func init() {
	filter.MustRegister(filter.Definition{Name: Name, Aliases: []string{Alias}, New: New})
}

// Direction is a listener's traffic direction.
type Direction uint8

// Directions.
const (
	Outbound Direction = iota
	Inbound
)

// DirectionOf tells a listener's direction from its stat_prefix, named as
// Aeraki (and Istio) name them: "inbound|<port>||" for inbound listeners,
// "outbound|<port>||<host>" for outbound ones. A prefix that starts with
// "inbound" (any case) is inbound; every other is outbound.
func DirectionOf(statPrefix string) Direction {
	if len(statPrefix) >= 7 && strings.EqualFold(statPrefix[:7], "inbound") {
		return Inbound
	}
	return Outbound
}

func (d Direction) String() string {
	if d == Inbound {
		return "inbound"
	}
	return "outbound"
}

// Peer is the identity of a node as Istio's standard metrics label it.
// Fields the node did not give are "".
type Peer struct {
	ID                string
	Name              string // the pod's name (NAME)
	Namespace         string // NAMESPACE
	Workload          string // WORKLOAD_NAME
	App               string // LABELS app (or app.kubernetes.io/name)
	Version           string // LABELS version (or app.kubernetes.io/version)
	CanonicalService  string // LABELS service.istio.io/canonical-name
	CanonicalRevision string // LABELS service.istio.io/canonical-revision
	Cluster           string // CLUSTER_ID
	Mesh              string // MESH_ID
	ServiceAccount    string // SERVICE_ACCOUNT
}

// PeerOf returns the identity of node metadata md with id.
func PeerOf(md *structpb.Struct, id string) *Peer {
	f := md.GetFields()
	str := func(k string) string { return f[k].GetStringValue() }
	labels := f["LABELS"].GetStructValue().GetFields()
	label := func(ks ...string) string {
		for _, k := range ks {
			if v := labels[k].GetStringValue(); v != "" {
				return v
			}
		}
		return ""
	}
	return &Peer{
		ID: id, Name: str("NAME"), Namespace: str("NAMESPACE"), Workload: str("WORKLOAD_NAME"),
		App:               label("app", "app.kubernetes.io/name"),
		Version:           label("version", "app.kubernetes.io/version"),
		CanonicalService:  label("service.istio.io/canonical-name"),
		CanonicalRevision: label("service.istio.io/canonical-revision"),
		Cluster:           str("CLUSTER_ID"), Mesh: str("MESH_ID"), ServiceAccount: str("SERVICE_ACCOUNT"),
	}
}

// LocalPeer returns the identity of LocalNode(env).
func LocalPeer(env filter.Env) (*Peer, error) {
	n, err := LocalNode(env)
	if err != nil {
		return nil, err
	}
	return PeerOf(n.Metadata, n.ID), nil
}

// exchangedKeys are the node metadata keys sent to the peer: those of
// Istio's FlatNode (what its metadata exchange sends), and SERVICE_ACCOUNT.
// The rest of a real Istio node's metadata (PROXY_CONFIG...) stays local.
var exchangedKeys = []string{"NAME", "NAMESPACE", "OWNER", "WORKLOAD_NAME", "ISTIO_VERSION", "MESH_ID",
	"CLUSTER_ID", "LABELS", "PLATFORM_METADATA", "APP_CONTAINERS", "INSTANCE_IPS", "SERVICE_ACCOUNT"}

// EncodeMetadata returns the x-envoy-peer-metadata value of node metadata
// md: the standard base64 of the serialized google.protobuf.Struct of its
// exchanged keys, as Istio's and Aeraki's metadata exchange build it.
func EncodeMetadata(md *structpb.Struct) string {
	out := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for _, k := range exchangedKeys {
		if v, ok := md.GetFields()[k]; ok {
			out.Fields[k] = v
		}
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(out) // a Struct always marshals
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeMetadata decodes an x-envoy-peer-metadata value (standard or raw
// base64; Istio sends the standard form) into node metadata.
func DecodeMetadata(v string) (*structpb.Struct, error) {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "=")); err != nil {
			return nil, err
		}
	}
	s := &structpb.Struct{}
	if err := proto.Unmarshal(b, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Filter is a configured metadata exchange.
type Filter struct {
	dir       Direction
	metadata  string // our x-envoy-peer-metadata
	id        string // our x-envoy-peer-metadata-id
	peers     peerCache
	malformed *filter.Stat
}

// New builds the filter of config (a MetadataExchange, which has no
// settings) in env. The listener's direction comes from env.StatPrefix
// (DirectionOf); the local node from env (LocalNode).
func New(config json.RawMessage, env filter.Env) (filter.Filter, error) {
	if err := parse(config); err != nil {
		return nil, err
	}
	n, err := LocalNode(env)
	if err != nil {
		return nil, err
	}
	return &Filter{dir: DirectionOf(env.StatPrefix), metadata: EncodeMetadata(n.Metadata), id: n.ID,
		malformed: env.Stats.Counter(env.StatPrefix + ".metadata_exchange.malformed_peer_metadata")}, nil
}

// Direction returns the listener's direction.
func (f *Filter) Direction() Direction { return f.dir }

// OnRequest implements filter.Filter.
func (f *Filter) OnRequest(x *filter.Exchange) filter.Status {
	if f.dir == Outbound {
		x.SetRequestHeader(HeaderMetadata, f.metadata)
		if f.id != "" {
			x.SetRequestHeader(HeaderID, f.id)
		}
		return filter.Continue
	}
	f.learn(x, &x.Request.Meta)
	return filter.Continue
}

// OnResponse implements filter.ResponseFilter. Local replies carry no
// headers: an outbound listener learns no peer from them.
func (f *Filter) OnResponse(x *filter.Exchange) {
	if f.dir == Inbound {
		x.SetResponseHeader(HeaderMetadata, f.metadata)
		if f.id != "" {
			x.SetResponseHeader(HeaderID, f.id)
		}
		return
	}
	if x.Response != nil {
		f.learn(x, &x.Response.Meta)
	}
}

// learn puts the peer that m describes into x's PeerSlot.
func (f *Filter) learn(x *filter.Exchange, m *codec.Metadata) {
	v, ok := m.Get(HeaderMetadata)
	if !ok || v == "" {
		return
	}
	id := m.Value(HeaderID)
	if p := f.peers.get(v, id); p != nil {
		PeerSlot.Set(x, p)
		return
	}
	md, err := DecodeMetadata(v)
	if err != nil {
		f.malformed.Inc()
		return
	}
	PeerSlot.Set(x, f.peers.add(v, id, PeerOf(md, strings.Clone(id))))
}

// maxPeers bounds the cache of decoded peers: when it is full it starts
// over, so that a stream of distinct headers cannot grow it.
const maxPeers = 1024

type peerKey struct{ metadata, id string }

// peerCache maps header values to decoded peers: a copy-on-write map
// behind an atomic pointer, read without a lock or an allocation.
type peerCache struct {
	m  atomic.Pointer[map[peerKey]*Peer]
	mu sync.Mutex
}

func (c *peerCache) get(metadata, id string) *Peer {
	if m := c.m.Load(); m != nil {
		return (*m)[peerKey{metadata, id}]
	}
	return nil
}

// add caches p under copies of the header values (which may point into a
// reused read buffer) and returns the cached peer.
func (c *peerCache) add(metadata, id string, p *Peer) *Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := peerKey{metadata, id}
	old := c.m.Load()
	if old != nil {
		if q := (*old)[k]; q != nil {
			return q
		}
	}
	n := 1
	if old != nil && len(*old) < maxPeers {
		n += len(*old)
	}
	m := make(map[peerKey]*Peer, n)
	if old != nil && len(*old) < maxPeers {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[peerKey{strings.Clone(metadata), strings.Clone(id)}] = p
	c.m.Store(&m)
	return p
}
