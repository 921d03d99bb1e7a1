package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"log/slog"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/router"
	"github.com/metaproxy/metaproxy/transport"
)

// Config is one compiled listener configuration: everything a Server needs,
// already validated. The config package builds it from Aeraki's
// MetaProtocolProxy and Envoy's cluster schema.
type Config struct {
	// StatPrefix and Protocol name the listener in stats and logs.
	StatPrefix string
	Protocol   string
	// Codec makes the codecs of the listener's protocol.
	Codec codec.Factory
	// Multiplexing shares upstream connections between requests of many
	// clients, rewriting request ids; without it each request takes a
	// pooled upstream connection of its own until its response.
	Multiplexing bool
	// Filters run in order before the router.
	Filters []filter.Named
	// FilterStats holds the stats the filters registered; the host shows
	// them (admin /stats). Nil when there are none.
	FilterStats *filter.Stats
	// Metrics is the listener's Prometheus registry: the filters' labelled
	// metrics and histograms, and the engine's own (see metrics.go). Nil:
	// the Server makes one.
	Metrics *prometheus.Registry
	// Routes is the route table.
	Routes *router.Table
	// Clusters are the clusters the routes refer to.
	Clusters []cluster.Config
	// DynamicClusters: more clusters come from a control plane (CDS, see
	// Server.SetClusters), so a route may name a cluster that is not there
	// yet; its requests get the native cluster-not-found error.
	DynamicClusters bool
	// IdleTimeout closes a downstream connection that sent nothing and had
	// no request in flight for that long. Zero disables it.
	IdleTimeout time.Duration
	// RequestTimeout bounds how long a request waits for its upstream
	// response; the client then gets a native timeout error. Zero means no
	// limit (the config package applies DefaultRequestTimeout when the
	// configuration leaves it unset).
	RequestTimeout time.Duration
	// FrameReceiveTimeout bounds the time a client takes to send one whole
	// frame, from its first byte; over it the client gets a native timeout
	// error and its connection is closed. Zero means no limit.
	FrameReceiveTimeout time.Duration
	// MaxConnections bounds the downstream connections served at once
	// (Server.Admit). Zero means no limit.
	MaxConnections int
	// MaxActiveRequestsPerConnection and MaxActiveRequests bound the
	// requests in flight on one downstream connection and on the whole
	// listener; a request over either gets a native overloaded error at
	// once. Zero means no limit.
	MaxActiveRequestsPerConnection int
	MaxActiveRequests              int
	// MaxBufferedBytesTotal bounds the partial frames held across all the
	// listener's downstream connections; the connection whose frame would
	// cross it gets a native overloaded error and is closed. Zero means no
	// limit.
	MaxBufferedBytesTotal int64
	// MaxBufferedBytes bounds the bytes held for one connection (a partial
	// frame, or requests waiting for an upstream connection). Over it the
	// connection is closed. Zero means DefaultMaxBufferedBytes.
	MaxBufferedBytes int
	// UpstreamConnsPerHost is the number of multiplexed connections kept
	// to each upstream host. Zero means DefaultUpstreamConnsPerHost.
	UpstreamConnsPerHost int
}

// Defaults. The config package applies the request timeout and the
// overload bounds when a configuration leaves them unset.
const (
	DefaultMaxBufferedBytes     = 32 << 20
	DefaultUpstreamConnsPerHost = 2
	maxIdleExclusivePerHost     = 128

	// DefaultRequestTimeout is Envoy generic_proxy's: an upstream that
	// never answers cannot hold a request, and its memory, for ever.
	DefaultRequestTimeout                 = 15 * time.Second
	DefaultFrameReceiveTimeout            = 30 * time.Second
	DefaultMaxActiveRequestsPerConnection = 1024
	DefaultMaxActiveRequests              = 16384
	DefaultMaxBufferedBytesTotal          = 128 << 20
)

// Options are the host's contributions to a Server.
type Options struct {
	Dialer transport.Dialer
	// Clusters is the process's cluster manager, shared by its listeners;
	// nil gives the Server a private one.
	Clusters *cluster.Manager
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}
