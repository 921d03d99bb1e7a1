// Package istiostats emits Istio's standard request metrics for
// meta-protocol listeners (aeraki.meta_protocol.filters.istio_stats,
// Aeraki's IstioStats): istio_requests_total, and the histograms
// istio_request_duration_milliseconds, istio_request_bytes and
// istio_response_bytes, with Istio's standard labels, in the listener's
// Prometheus registry (filter.Env.Metrics). The peer comes from
// metadata_exchange (listed before it), the local identity from the node
// (metadataexchange.LocalNode of its filter.Env). Every exchange is recorded once, when it
// ends. See README.md.
package istiostats

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filters/metadataexchange"
	"github.com/metaproxy/metaproxy/filters/rbac"
)

// Name is the filter's name in meta_protocol_filters; Alias is Aeraki's.
const (
	Name  = "istio_stats"
	Alias = "aeraki.meta_protocol.filters.istio_stats"
)

// ProtocolKey is the request metadata key that names the application
// protocol (Aeraki's x-meta-protocol-application-protocol), read when the
// listener's protocol (filter.Env.Protocol) is not known. When a request
// lacks it too, request_protocol is guessed from the codec's keys: "thrift"
// when message_type is set, "dubbo" when the Dubbo version (dubbo) is.
const ProtocolKey = "x-meta-protocol-application-protocol"

// Unknown is Istio's value of a label it cannot tell.
const Unknown = "unknown"

func init() {
	filter.MustRegister(filter.Definition{Name: Name, Aliases: []string{Alias}, New: New})
}

// Filter is a configured istio_stats.
type Filter struct {
	dir         metadataexchange.Direction
	local       metadataexchange.Peer
	destService string
	protocol    string // the listener's; "" when unknown
	clock       filter.Clock

	requests                      *prometheus.CounterVec
	duration, reqBytes, respBytes *prometheus.HistogramVec

	series atomic.Pointer[map[key]*series] // copy-on-write
	mu     sync.Mutex                      // serializes writers of series
}

// key is what the labels of an exchange depend on.
type key struct {
	// peer is the cached peer of metadata_exchange (nil: none): one
	// pointer per distinct header, cheaper to hash than its fields.
	peer      *metadataexchange.Peer
	cluster   string // outbound only
	protocol  string
	code      string
	principal string // the client's authenticated principal (inbound)
	// the inputs of filter.ResponseFlags
	flags       filter.Flag
	gone, local bool
	errType     codec.ErrorType
}

// series are the metrics of one label set.
type series struct {
	requests                      prometheus.Counter
	duration, reqBytes, respBytes prometheus.Observer
}

// maxSeries bounds the cache of label sets; past it, exchanges of new
// label sets are still counted, through the slower, allocating lookup.
const maxSeries = 4096

// New builds the filter of config (an IstioStats) in env, registering its
// metrics in env.Metrics (a second istio_stats of the listener shares
// them). The direction comes from env.StatPrefix
// (metadataexchange.DirectionOf).
func New(config json.RawMessage, env filter.Env) (filter.Filter, error) {
	c, err := parse(config)
	if err != nil {
		return nil, err
	}
	local, err := metadataexchange.LocalPeer(env)
	if err != nil {
		return nil, err
	}
	f := &Filter{dir: metadataexchange.DirectionOf(env.StatPrefix), local: *local,
		destService: c.GetDestinationService(), protocol: env.Protocol, clock: env.Clock}
	if f.requests, err = register(env.Metrics, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "istio_requests_total", Help: "Requests handled by the proxy, by Istio's standard labels.",
	}, labelNames)); err != nil {
		return nil, err
	}
	for _, h := range []struct {
		dst        **prometheus.HistogramVec
		name, help string
		buckets    []float64
	}{
		{&f.duration, "istio_request_duration_milliseconds", "Duration of requests, in milliseconds.", DurationBuckets},
		{&f.reqBytes, "istio_request_bytes", "Size of requests, in bytes.", BytesBuckets},
		{&f.respBytes, "istio_response_bytes", "Size of responses, in bytes.", BytesBuckets},
	} {
		if *h.dst, err = register(env.Metrics, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: h.name, Help: h.help, Buckets: h.buckets,
		}, labelNames)); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// register registers c in r, or returns the collector already registered
// under its name.
func register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old, nil
			}
		}
		return c, err
	}
	return c, nil
}

// OnRequest implements filter.Filter: istio_stats acts when the exchange
// ends.
func (f *Filter) OnRequest(*filter.Exchange) filter.Status { return filter.Continue }

// OnComplete implements filter.Completer: it records the exchange.
func (f *Filter) OnComplete(x *filter.Exchange) {
	o := &x.Outcome
	k := key{code: filter.ResponseCode(x), flags: o.Flags, gone: o.ClientGone, local: o.Local}
	if o.Local {
		k.errType = o.ErrorType
	}
	if p, ok := metadataexchange.PeerSlot.Get(x); ok && p != nil {
		k.peer = p
	}
	if f.dir == metadataexchange.Outbound {
		k.cluster = x.Cluster
	} else if p, ok := rbac.PeerPrincipal.Get(x); ok {
		k.principal = p
	}
	switch {
	case f.protocol != "":
		k.protocol = f.protocol
	case x.Request != nil:
		k.protocol = protocolOf(&x.Request.Meta)
	default:
		k.protocol = Unknown
	}
	var s *series
	if m := f.series.Load(); m != nil {
		s = (*m)[k]
	}
	if s == nil {
		s = f.add(&k, x)
	}
	end := o.End
	if end.IsZero() {
		end = f.clock.Now()
	}
	s.requests.Inc()
	s.duration.Observe(float64(end.Sub(x.Start)) / 1e6)
	s.reqBytes.Observe(float64(o.BytesIn))
	s.respBytes.Observe(float64(o.BytesOut))
}

// protocolOf names the protocol of a request with metadata m.
func protocolOf(m *codec.Metadata) string {
	if v := m.Value(ProtocolKey); v != "" {
		return v
	}
	if _, ok := m.Get("message_type"); ok {
		return "thrift"
	}
	if _, ok := m.Get("dubbo"); ok {
		return "dubbo"
	}
	return Unknown
}

// add returns the series of k, making it (and caching it, under a copy of
// k that owns its strings) when it is new.
func (f *Filter) add(k *key, x *filter.Exchange) *series {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.series.Load()
	if old != nil {
		if s := (*old)[*k]; s != nil {
			return s
		}
	}
	lv := f.labelValues(k, filter.ResponseFlags(x))
	s := &series{requests: f.requests.WithLabelValues(lv...), duration: f.duration.WithLabelValues(lv...),
		reqBytes: f.reqBytes.WithLabelValues(lv...), respBytes: f.respBytes.WithLabelValues(lv...)}
	if old != nil && len(*old) >= maxSeries {
		return s
	}
	n := 1
	if old != nil {
		n += len(*old)
	}
	m := make(map[key]*series, n)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	c := *k
	c.cluster, c.protocol, c.principal = strings.Clone(c.cluster), strings.Clone(c.protocol), strings.Clone(c.principal)
	m[c] = s
	f.series.Store(&m)
	return s
}

// labelValues returns the values of labelNames for k, Istio's way:
// Unknown for what is not known.
func (f *Filter) labelValues(k *key, flags string) []string {
	local, peer := ident(&f.local), ident(k.peer)
	reporter, src, dst := "source", local, peer
	srcPrin, dstPrin, policy := Unknown, Unknown, Unknown
	if f.dir == metadataexchange.Inbound {
		reporter, src, dst = "destination", peer, local
		if k.principal != "" {
			srcPrin, policy = k.principal, "mutual_tls"
			dstPrin = localPrincipal(&f.local, k.principal)
		}
	}
	svc, svcName, svcNS := f.service(k.cluster, dst.namespace)
	return []string{
		reporter,
		src.workload, src.namespace, srcPrin, src.app, src.version, src.canonicalService, src.canonicalRevision, src.cluster,
		dst.workload, dst.namespace, dstPrin, dst.app, dst.version, svc, svcName, svcNS,
		dst.canonicalService, dst.canonicalRevision, dst.cluster,
		strings.Clone(k.protocol), k.code, flags, policy,
	}
}

// identity is a peer's label values.
type identity struct {
	workload, namespace, app, version, canonicalService, canonicalRevision, cluster string
}

func orUnknown(s string) string {
	if s == "" {
		return Unknown
	}
	return s
}

// ident returns the label values of p: all Unknown without a peer (nil); with
// one, the canonical service defaults to the app then the workload, the
// canonical revision to the version then "latest", as Istio's do.
func ident(p *metadataexchange.Peer) identity {
	if p == nil {
		return identity{Unknown, Unknown, Unknown, Unknown, Unknown, Unknown, Unknown}
	}
	cs := p.CanonicalService
	if cs == "" {
		cs = p.App
	}
	if cs == "" {
		cs = p.Workload
	}
	cr := p.CanonicalRevision
	if cr == "" {
		cr = p.Version
	}
	if cr == "" {
		cr = "latest"
	}
	return identity{orUnknown(p.Workload), orUnknown(p.Namespace), orUnknown(p.App), orUnknown(p.Version),
		orUnknown(cs), cr, orUnknown(p.Cluster)}
}

// localPrincipal is the local node's SPIFFE identity in the trust domain
// of the client's principal, when the client's is a SPIFFE id and the node
// gave its namespace and service account; Unknown otherwise.
func localPrincipal(p *metadataexchange.Peer, client string) string {
	rest, ok := strings.CutPrefix(client, "spiffe://")
	td, _, _ := strings.Cut(rest, "/")
	if !ok || td == "" || p.Namespace == "" || p.ServiceAccount == "" {
		return Unknown
	}
	return "spiffe://" + td + "/ns/" + p.Namespace + "/sa/" + p.ServiceAccount
}

// service returns destination_service, destination_service_name and
// destination_service_namespace. Outbound, the service is the host of
// the cluster (Istio's "outbound|<port>|<subset>|<host>"), else the
// configured destination_service, else the cluster's name; inbound, the
// configured destination_service. A Kubernetes host
// (<name>.<namespace>.svc...) gives the name and namespace; another host
// is its own name, in the destination workload's namespace.
func (f *Filter) service(cluster, dstNamespace string) (svc, name, ns string) {
	host := ""
	if f.dir == metadataexchange.Outbound {
		if i := strings.LastIndexByte(cluster, '|'); i >= 0 {
			host = cluster[i+1:]
		}
	}
	if host == "" {
		host = f.destService
	}
	if host == "" && f.dir == metadataexchange.Outbound {
		host = cluster
	}
	if host == "" {
		return Unknown, Unknown, dstNamespace
	}
	host = strings.Clone(host)
	if parts := strings.SplitN(host, ".", 4); len(parts) >= 3 && parts[2] == "svc" {
		return host, parts[0], parts[1]
	}
	return host, host, dstNamespace
}
