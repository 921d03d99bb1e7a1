//go:build cgo

package main

import (
	"sync"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/xds"
)

// Envoy's SDK keeps every listener config it parsed for the life of the
// process: each listener update (an Istio push) would leave a whole engine
// behind — its connection pools, its filters, its clusters' DNS
// refreshers. The plugin bounds that: configs with the same plugin_config
// share one engine, and a config superseded by a newer one of the same
// listener (stat_prefix) closes its engine once its last connection ends;
// a connection Envoy still hands to a closed config is served by the
// newest config of its listener. Clusters are shared by content across all
// configs through one cluster manager.

// clusters is the process's cluster manager; xdsPool holds the process's
// xDS clients, one per management server, shared by every config, and
// feeds EDS clusters their endpoints.
var (
	clusters = cluster.NewManager(logger)
	xdsPool  = xds.NewPool(logger)
)

func init() { clusters.SetDiscovery(xdsPool.Discovery) }

var registry = configRegistry{byKey: map[string]*listenerConfig{}, latest: map[string]*listenerConfig{}}

type configRegistry struct {
	mu     sync.Mutex
	byKey  map[string]*listenerConfig // open configs by plugin_config
	latest map[string]*listenerConfig // the newest config of each listener
}

// shared returns the open config built from key, now its listener's
// newest, or nil.
func (r *configRegistry) shared(key string) *listenerConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc := r.byKey[key]
	if lc == nil {
		return nil
	}
	r.promote(lc)
	return lc
}

// add registers the new config lc, superseding the older configs of its
// listener.
func (r *configRegistry) add(lc *listenerConfig) {
	if lc.srv == nil {
		return // a bad config holds nothing
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKey[lc.key] = lc
	r.promote(lc)
}

// promote makes lc its listener's newest config; r.mu is held.
func (r *configRegistry) promote(lc *listenerConfig) {
	lc.superseded = false
	old := r.latest[lc.name]
	r.latest[lc.name] = lc
	if old != nil && old != lc {
		old.superseded = true
		r.closeIfDone(old)
	}
}

// open takes a connection on lc, or on its listener's newest config when
// lc is closed; it returns the config that took it (nil if none can).
func (r *configRegistry) open(lc *listenerConfig) *listenerConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lc.closed {
		lc = r.latest[lc.name]
		if lc == nil || lc.closed {
			return nil
		}
	}
	lc.sessions++
	return lc
}

// done ends a connection taken with open.
func (r *configRegistry) done(lc *listenerConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	lc.sessions--
	r.closeIfDone(lc)
}

// closeIfDone closes the engine of lc if it is superseded and idle; r.mu
// is held.
func (r *configRegistry) closeIfDone(lc *listenerConfig) {
	if !lc.superseded || lc.sessions > 0 || lc.closed {
		return
	}
	lc.closed = true
	if r.byKey[lc.key] == lc {
		delete(r.byKey, lc.key)
	}
	logger.Info("metaprotocol: superseded listener config released", "stat_prefix", lc.name)
	go func() { // off Envoy's worker: it closes every connection of every pool
		lc.unbind()
		lc.srv.Close()
	}()
}
