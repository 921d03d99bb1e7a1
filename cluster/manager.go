package cluster

import (
	"encoding/json"
	"fmt"
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
	log *slog.Logger
	mu  sync.Mutex
	m   map[string]*managed // by content
}

type managed struct {
	c    *Cluster
	refs int
}

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
	m.m[k] = &managed{c: c, refs: 1}
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
		c.Close()
	}
}

// Len returns the number of clusters the manager holds.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// Set is the clusters of one configuration, by name, held from a Manager.
type Set struct {
	mgr *Manager
	m   map[string]*Cluster
}

// NewSet acquires every cluster of cfgs from mgr (a private manager when
// nil).
func NewSet(mgr *Manager, cfgs []Config, log *slog.Logger) (*Set, error) {
	if mgr == nil {
		mgr = NewManager(log)
	}
	s := &Set{mgr: mgr, m: make(map[string]*Cluster, len(cfgs))}
	for _, cfg := range cfgs {
		if _, dup := s.m[cfg.Name]; dup {
			s.Close()
			return nil, fmt.Errorf("cluster %q is defined twice", cfg.Name)
		}
		c, err := mgr.Acquire(cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.m[cfg.Name] = c
	}
	return s, nil
}

// Get returns the cluster called name. A Set never changes after NewSet.
func (s *Set) Get(name string) *Cluster { return s.m[name] }

// Close releases every cluster of s.
func (s *Set) Close() {
	for _, c := range s.m {
		s.mgr.Release(c)
	}
	clear(s.m)
}
