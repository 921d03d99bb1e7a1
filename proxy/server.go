package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/router"
	"github.com/metaproxy/metaproxy/transport"
)

// Server is one listener's engine: a compiled configuration, its clusters
// and its upstream connection pools. Sessions are created per downstream
// connection with NewSession.
type Server struct {
	cfg      Config
	dialer   transport.Dialer
	log      *slog.Logger
	now      func() time.Time
	snap     atomic.Pointer[snapshot]
	mgr      *cluster.Manager
	swapMu   sync.Mutex             // serialises route and cluster swaps
	refs     map[string]*clusterRef // by name; replaced whole by SetClusters, never changed in place
	mirrors  mirrorSink
	stats    Stats
	maxBuf   int
	buffered atomic.Int64 // partial frames held by all sessions

	poolMu sync.RWMutex
	pools  map[poolKey]*pool

	upMu    sync.Mutex
	ups     map[*upstream]struct{} // live upstream connections, for timeouts
	waiting map[*pool]struct{}     // pools with requests waiting for a connection

	closed atomic.Bool
}

// Pools are per upstream host (the cluster's Host object, which keeps its
// identity across endpoint updates) and codec variant.
type poolKey struct {
	host    *cluster.Host
	variant uint16
}

// New builds a Server from cfg. It fails if a route names a cluster that
// does not exist.
func New(cfg Config, o Options) (*Server, error) {
	if cfg.Codec == nil {
		return nil, errors.New("proxy: config has no codec")
	}
	if err := runnable(codec.CapabilitiesOf(cfg.Codec)); err != nil {
		return nil, err
	}
	if o.Dialer == nil {
		return nil, errors.New("proxy: options have no dialer")
	}
	if cfg.Routes == nil {
		cfg.Routes = &router.Table{}
	}
	if codec.CapabilitiesOf(cfg.Codec).OrderedResponses {
		// Answers without ids come back in FIFO order on an upstream
		// connection: many requests share one (see ordered.go).
		cfg.Multiplexing = true
	}
	if err := cfg.Routes.Validate(); err != nil {
		return nil, fmt.Errorf("proxy: routes: %w", err)
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.UpstreamConnsPerHost <= 0 {
		cfg.UpstreamConnsPerHost = DefaultUpstreamConnsPerHost
	}
	s := &Server{cfg: cfg, dialer: o.Dialer, log: o.Logger, now: o.Now, maxBuf: cfg.MaxBufferedBytes,
		pools: map[poolKey]*pool{}, ups: map[*upstream]struct{}{}, waiting: map[*pool]struct{}{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("stat_prefix", cfg.StatPrefix)
	if s.now == nil {
		s.now = time.Now
	}
	s.mgr = o.Clusters
	if s.mgr == nil {
		s.mgr = cluster.NewManager(s.log)
	}
	s.mirrors.srv = s
	refs, err := s.acquire(cfg.Clusters, nil)
	if err != nil {
		return nil, err
	}
	s.refs = refs
	chain := filter.NewChain(cfg.Filters, func(name string, p any) {
		s.stats.PanicsContained.Add(1)
		s.log.Error("panic contained", "where", "filter", "filter", name, "panic", p)
	})
	if err := s.swap(chain, cfg.Routes, !cfg.DynamicClusters); err != nil {
		s.releaseAll(refs)
		return nil, err
	}
	s.startSweeping()
	return s, nil
}

// SetRoutes swaps the route table under live traffic: requests decoded from
// now on use t; requests decoded before keep the table they were decoded
// under.
// Every cluster t names must exist, unless the config's DynamicClusters
// says more come from CDS.
func (s *Server) SetRoutes(t *router.Table) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	return s.swap(s.snap.Load().chain, t, !s.cfg.DynamicClusters)
}

// SetDiscoveredRoutes is SetRoutes for routes from a control plane (RDS):
// a route may name a cluster that is not there (yet: CDS may deliver it
// later, as in Envoy, which does not validate RDS clusters by default); its
// requests get the protocol's native cluster-not-found error.
func (s *Server) SetDiscoveredRoutes(t *router.Table) error {
	s.swapMu.Lock()
	defer s.swapMu.Unlock()
	return s.swap(s.snap.Load().chain, t, false)
}

// swap validates and installs a snapshot of chain, t and the clusters;
// s.swapMu is held (or s is being built).
func (s *Server) swap(chain *filter.Chain, t *router.Table, checkClusters bool) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("proxy: routes: %w", err)
	}
	for _, name := range t.Clusters() {
		if checkClusters && s.refs[name] == nil {
			return fmt.Errorf("proxy: routes: route config %q refers to unknown cluster %q", t.Name, name)
		}
	}
	s.snap.Store(&snapshot{chain: chain, routes: t, clusters: s.refs, tick: sweepTick(s.cfg.RequestTimeout, t)})
	return nil
}

// Stats returns the listener's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Metrics returns the listener's Prometheus registry (its filters'
// metrics); nil when it has none.
func (s *Server) Metrics() *prometheus.Registry { return s.cfg.Metrics }

// FilterStats returns the stats of the listener's filters (nil for none).
func (s *Server) FilterStats() *filter.Stats { return s.cfg.FilterStats }

// Clusters returns the clusters the listener routes to, by name.
func (s *Server) Clusters() []*cluster.Cluster {
	refs := s.snap.Load().clusters
	out := make([]*cluster.Cluster, 0, len(refs))
	for _, name := range slices.Sorted(maps.Keys(refs)) {
		out = append(out, refs[name].cl)
	}
	return out
}

// Config returns the server's configuration.
func (s *Server) Config() *Config { return &s.cfg }

// InFlight returns the number of requests being proxied.
func (s *Server) InFlight() int64 { return s.stats.RequestActive.Load() }

// Drain waits until no request is in flight or ctx is done.
func (s *Server) Drain(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.InFlight() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("proxy: drain: %d requests still in flight: %w", s.InFlight(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Close closes upstream connections and stops cluster discovery. Sessions
// must be closed by the host.
func (s *Server) Close() {
	if s.closed.Swap(true) {
		return
	}
	s.stopSweeping()
	s.swapMu.Lock()
	refs := s.refs
	s.refs = nil
	s.swapMu.Unlock()
	for _, ref := range refs {
		ref.unwatch()
	}
	s.poolMu.Lock()
	pools := s.pools
	s.pools = map[poolKey]*pool{}
	s.poolMu.Unlock()
	for _, p := range pools {
		p.close()
	}
	// Every live upstream connection is tracked, lent ones included.
	s.upMu.Lock()
	ups := make([]*upstream, 0, len(s.ups))
	for u := range s.ups {
		ups = append(ups, u)
	}
	s.upMu.Unlock()
	for _, u := range ups {
		u.close()
	}
	s.releaseAll(refs)
	s.snap.Load().chain.Close()
}

// pool returns the pool of h, of ref's cluster, for variant, made on first
// use. A host picked before it left its cluster, or before its cluster left
// the listener, gets no new pool (errHostGone): the drain of its pools has
// run or is about to, and would miss one made now. Both marks are set
// before that drain takes s.poolMu.
func (s *Server) pool(h *cluster.Host, variant uint16, ref *clusterRef) (*pool, error) {
	k := poolKey{h, variant}
	s.poolMu.RLock()
	p := s.pools[k]
	s.poolMu.RUnlock()
	if p != nil {
		return p, nil
	}
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	switch {
	case s.closed.Load():
		return nil, errListenerClosing
	case h.Left() || ref.gone.Load():
		return nil, errHostGone
	}
	if p = s.pools[k]; p == nil {
		cl := ref.cl
		p = &pool{srv: s, host: h, cl: cl, addr: h.Addr, timeout: cl.ConnectTimeout(), mux: s.cfg.Multiplexing}
		if p.mux {
			p.conns = make([]*upstream, s.cfg.UpstreamConnsPerHost)
		}
		s.pools[k] = p
	}
	return p, nil
}

// contain turns a panic into an error; used around codec and filter calls.
func (s *Server) contain(where string, err *error) {
	if p := recover(); p != nil {
		s.stats.PanicsContained.Add(1)
		s.log.Error("panic contained", "where", where, "panic", p)
		if err != nil {
			*err = fmt.Errorf("%s: panic: %v", where, p)
		}
	}
}

func (s *Server) split(c codec.Codec, b []byte) (n int, err error) {
	defer s.contain("codec split", &err)
	n, err = c.Split(b)
	if err == nil && (n < 0 || n > len(b)) {
		err = fmt.Errorf("codec split returned %d for %d bytes", n, len(b))
	}
	return n, err
}

func (s *Server) decode(c codec.Codec, frame []byte, m *codec.Message) (err error) {
	defer s.contain("codec decode", &err)
	return c.Decode(frame, m)
}

func (s *Server) encode(c codec.Codec, dst []byte, m *codec.Message, e *codec.Edit) (out []byte, err error) {
	defer s.contain("codec encode", &err)
	return c.Encode(dst, m, e)
}

func (s *Server) errorReply(c codec.Codec, dst []byte, m *codec.Message, e *codec.Error) (out []byte) {
	defer s.contain("codec error reply", nil)
	out = dst
	return c.ErrorReply(dst, m, e)
}

func (s *Server) rejectReply(r codec.Rejecter, dst, buf []byte, e *codec.Error) (out []byte) {
	defer s.contain("codec reject reply", nil)
	out = dst
	return r.RejectReply(dst, buf, e)
}

func (s *Server) heartbeatReply(c codec.Codec, dst []byte, m *codec.Message) (out []byte) {
	defer s.contain("codec heartbeat reply", nil)
	out = dst
	return c.HeartbeatReply(dst, m)
}

// runnable refuses a codec that declares a mode the engine does not run
// yet, rather than proxying its protocol wrongly.
func runnable(c codec.Capabilities) error {
	var why string
	switch {
	case c.Side != codec.SideBoth:
		why = "parses only one side of a connection"
	default:
		return nil
	}
	return fmt.Errorf("proxy: the codec %s, which this engine does not run yet", why)
}

// drainHosts drains the pools of hosts that left their cluster: no new
// request goes to them, idle connections close now and busy ones after
// their last answer.
func (s *Server) drainHosts(removed []*cluster.Host) {
	gone := make(map[*cluster.Host]bool, len(removed))
	for _, h := range removed {
		gone[h] = true
	}
	var drain []*pool
	s.poolMu.Lock()
	for k, p := range s.pools {
		if gone[k.host] {
			drain = append(drain, p)
			delete(s.pools, k)
		}
	}
	s.poolMu.Unlock()
	for _, p := range drain {
		p.drain()
	}
}
