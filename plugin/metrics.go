//go:build cgo

package main

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/admin"
	"github.com/metaproxy/metaproxy/cluster"
)

// Envoy's admin cannot show the Go engine's metrics, so the plugin serves
// them itself (and its /config_dump and /clusters), as Prometheus text (and Envoy's /stats text), on the address plugin_config's
// metrics_address names (the first listener config that sets one opens
// it; every listener's metrics are served there). Istio scrapes it when the
// pod says so (prometheus.io/scrape, prometheus.io/port and
// prometheus.io/path: /stats/prometheus annotations, or Istio's metrics
// merging: see envoy-configs/README.md).

var metricsServers struct {
	mu   sync.Mutex
	open map[string]bool
}

// serveMetrics serves the plugin's metrics on addr, once per process.
func serveMetrics(addr string) {
	metricsServers.mu.Lock()
	defer metricsServers.mu.Unlock()
	if metricsServers.open[addr] {
		return
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Error("metaprotocol: cannot serve metrics", "metrics_address", addr, "error", err)
		return
	}
	if metricsServers.open == nil {
		metricsServers.open = map[string]bool{}
	}
	metricsServers.open[addr] = true
	h := admin.MetricsHandler(registry.sources)
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.Handle("/stats/prometheus", h)
	mux.Handle("/stats", admin.StatsHandler(registry.sources))
	mux.Handle("/config_dump", admin.ConfigDumpHandler(admin.Dump{Dynamic: xdsPool.ConfigDump}))
	mux.Handle("/clusters", admin.ClustersHandler(func() []*cluster.Cluster { return admin.ClustersOf(registry.sources()) }))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	logger.Info("metaprotocol: serving metrics", "metrics_address", l.Addr().String())
}

// sources returns the newest config of every listener, for the metrics.
func (r *configRegistry) sources() []admin.Source {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]admin.Source, 0, len(r.latest))
	for name, lc := range r.latest {
		if lc.srv != nil {
			out = append(out, admin.Source{Protocol: lc.srv.Config().Protocol, StatPrefix: name, Server: lc.srv})
		}
	}
	return out
}
