package filter

import (
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
)

// Env is what a filter gets at construction: where it logs, its clock and
// random source, where its stats go, and the clusters it may call. Filters
// take time, chance and stats from here, never from globals, so that their
// tests are deterministic (see package filtertest). The host fills every
// field (WithDefaults).
type Env struct {
	// Logger is scoped to the filter.
	Logger *slog.Logger
	// StatPrefix is the listener's stat prefix.
	StatPrefix string
	// Protocol is the name of the listener's protocol ("dubbo", "thrift"),
	// as metrics and traces name it.
	Protocol string
	// Clock tells the time and runs timers.
	Clock Clock
	// Rand is the filter's random source.
	Rand Rand
	// Stats is where the filter registers its stats.
	Stats *Stats
	// CarriesHeaders reports whether a request of the listener's protocol
	// can carry header edits (codec.HeaderCarrier), for filters that add
	// headers of their own accord; true for every request when the codec
	// does not say.
	CarriesHeaders func(m *codec.Message) bool
	// Node is the proxy's node identity as Envoy's bootstrap node (JSON:
	// id, cluster, metadata), from the standalone bootstrap's node or the
	// plugin_config's; nil when none was configured. Filters that report
	// the node (metadata_exchange, istio_stats) parse it.
	Node json.RawMessage
	// Metrics is the listener's Prometheus registry, for filters whose
	// metrics have labels or histograms (Istio's standard metrics). The
	// host serves it with every other metric of the listener.
	Metrics prometheus.Registerer
	// Cluster returns the configuration of a cluster of the listener by
	// name (a rate-limit service's), for filters that call services.
	Cluster func(name string) (cluster.Config, bool)
}

// WithDefaults returns e with every unset field set: the system clock and
// random source, a discarding logger, a fresh Stats, no clusters.
func (e Env) WithDefaults() Env {
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.Clock == nil {
		e.Clock = SystemClock
	}
	if e.Rand == nil {
		e.Rand = SystemRand
	}
	if e.Stats == nil {
		e.Stats = NewStats()
	}
	if e.Metrics == nil {
		e.Metrics = prometheus.NewRegistry()
	}
	if e.CarriesHeaders == nil {
		e.CarriesHeaders = func(*codec.Message) bool { return true }
	}
	if e.Cluster == nil {
		e.Cluster = func(string) (cluster.Config, bool) { return cluster.Config{}, false }
	}
	return e
}

// Clock is a filter's time source.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer started by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened yet, and reports
	// whether it did.
	Stop() bool
}

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                            { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Rand is a random source safe for concurrent use.
type Rand interface {
	Uint64() uint64
}

// SystemRand is math/rand/v2's global source.
var SystemRand Rand = systemRand{}

type systemRand struct{}

func (systemRand) Uint64() uint64 { return rand.Uint64() }

// Chance reports true with probability numerator/denominator (Envoy's
// FractionalPercent: denominator 100, 10,000 or 1,000,000).
func Chance(r Rand, numerator, denominator uint64) bool {
	if numerator >= denominator {
		return true
	}
	return numerator > 0 && r.Uint64()%denominator < numerator
}

// Stats holds the stats filters register, by name. Names are relative to
// "meta_protocol.", as Aeraki's: a local rate limit with stat_prefix p
// counts into "p.local_rate_limit.ok", shown as
// meta_protocol.p.local_rate_limit.ok. Registering a name twice returns the
// same stat, so filters of one listener that share a name share a count
// (as Envoy's stats store does).
type Stats struct {
	mu sync.Mutex
	m  map[string]*Stat
}

// Stat is one counter or gauge; updates are one atomic add.
type Stat struct {
	v     atomic.Int64
	gauge bool
}

// Inc adds 1.
func (s *Stat) Inc() { s.v.Add(1) }

// Add adds n (a gauge may go down).
func (s *Stat) Add(n int64) { s.v.Add(n) }

// Set sets a gauge to v.
func (s *Stat) Set(v int64) { s.v.Store(v) }

// Value returns the current value.
func (s *Stat) Value() int64 { return s.v.Load() }

// NewStats returns an empty set.
func NewStats() *Stats { return &Stats{m: map[string]*Stat{}} }

// Counter returns the counter called name.
func (s *Stats) Counter(name string) *Stat { return s.stat(name, false) }

// Gauge returns the gauge called name.
func (s *Stats) Gauge(name string) *Stat { return s.stat(name, true) }

func (s *Stats) stat(name string, gauge bool) *Stat {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.m[name]; st != nil {
		return st
	}
	st := &Stat{gauge: gauge}
	s.m[name] = st
	return st
}

// Each calls f with every stat, sorted by name.
func (s *Stats) Each(f func(name string, value int64, gauge bool)) {
	s.mu.Lock()
	names := make([]string, 0, len(s.m))
	for n := range s.m {
		names = append(names, n)
	}
	stats := make([]*Stat, len(names))
	sort.Strings(names)
	for i, n := range names {
		stats[i] = s.m[n]
	}
	s.mu.Unlock()
	for i, n := range names {
		f(n, stats[i].Value(), stats[i].gauge)
	}
}

// Value returns the value of the stat called name, 0 if there is none.
func (s *Stats) Value(name string) int64 {
	s.mu.Lock()
	st := s.m[name]
	s.mu.Unlock()
	if st == nil {
		return 0
	}
	return st.Value()
}
