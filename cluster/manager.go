package cluster

import (
	"encoding/json"
	"log/slog"
	"sync"
)

// Manager owns the clusters of a process. Listeners (and, in the Envoy
// plugin, listener configurations) that declare a cluster with the same
// content share one Cluster: one host set with its live state (connect
// back-off, requests in flight), one balancer and one DNS refresher,
// however many configurations name it. A cluster is closed when the last
// configuration holding it lets go.
type Manager struct {
	log      *slog.Logger
	discover func(*Cluster) (stop func())
	mu       sync.Mutex
	m        map[string]*managed // by content
}

type managed struct {
	c    *Cluster
	refs int
	stop func() // ends the cluster's endpoint discovery; nil for none
}

// SetDiscovery makes m call discover for every cluster it builds from now
// on, to feed it endpoints (Update) from a discovery service: EDS for
// clusters of type EDS. The returned stop is called when the cluster's last
// holder lets go, before the cluster closes. discover is called with m's
// lock held: it must not call back into m.
func (m *Manager) SetDiscovery(discover func(*Cluster) (stop func())) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.discover = discover
}

// Same reports whether cfg is c's configuration (the manager would share c
// for it).
func (c *Cluster) Same(cfg Config) bool { return key(c.cfg) == key(cfg) }

// Config returns the cluster's configuration.
func (c *Cluster) Config() Config { return c.cfg }

// NewManager returns an empty manager; log (may be nil) is given to its
// clusters.
func NewManager(log *slog.Logger) *Manager {
	return &Manager{log: log, m: map[string]*managed{}}
}

// key is cfg's identity: every field but the warnings.
func key(cfg Config) string {
	cfg.Warnings = nil
	b, _ := json.Marshal(cfg)
	return string(b)
}

// Acquire returns the cluster of cfg, built now or shared with earlier
// holders of the same configuration. Each Acquire is paired with a Release.
func (m *Manager) Acquire(cfg Config) (*Cluster, error) {
	k := key(cfg)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.m[k]; e != nil {
		e.refs++
		return e.c, nil
	}
	c, err := New(cfg, m.log)
	if err != nil {
		return nil, err
	}
	e := &managed{c: c, refs: 1}
	if m.discover != nil {
		e.stop = m.discover(c)
	}
	m.m[k] = e
	return c, nil
}

// Release lets go of c; the last release closes it.
func (m *Manager) Release(c *Cluster) {
	k := key(c.cfg)
	m.mu.Lock()
	e := m.m[k]
	if e == nil || e.c != c {
		m.mu.Unlock()
		return
	}
	e.refs--
	last := e.refs == 0
	if last {
		delete(m.m, k)
	}
	m.mu.Unlock()
	if last {
		if e.stop != nil {
			e.stop()
		}
		c.Close()
	}
}

// Len returns the number of clusters the manager holds.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
