// Package admin serves the standalone proxy's admin endpoint: /ready,
// /stats (Envoy-style "name: value" lines), /stats/prometheus and /metrics
// (Prometheus text, see metrics.go) and Go's profiler under /debug/pprof/.
// The plugin serves the same Prometheus text on its metrics_address. Like Envoy's admin, it is meant for
// 127.0.0.1 or a trusted network only.
package admin

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/proxy"
)

// Source is one listener's stats.
type Source struct {
	Protocol   string
	StatPrefix string
	Server     *proxy.Server
}

// Handler returns the admin HTTP handler. ready reports readiness; dump is
// what /config_dump shows.
func Handler(sources []Source, ready func() bool, dump Dump) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/config_dump", ConfigDumpHandler(dump))
	mux.Handle("/clusters", ClustersHandler(func() []*cluster.Cluster { return clusters(sources) }))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "DRAINING", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "LIVE")
	})
	mux.Handle("/stats", StatsHandler(func() []Source { return sources }))
	// Prometheus text: /stats/prometheus is where Istio scrapes Envoy.
	metrics := MetricsHandler(func() []Source { return sources })
	mux.Handle("/metrics", metrics)
	mux.Handle("/stats/prometheus", metrics)
	return mux
}

// StatsHandler serves the stats of the sources that sources returns as
// Envoy's /stats text: "name: value" lines.
func StatsHandler(sourcesOf func() []Source) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sources := sourcesOf()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, st := range serverStats() {
			fmt.Fprintf(w, "server.%s: %d\n", st.name, st.value)
		}
		for _, s := range sources {
			snap := s.Server.Stats().Snapshot()
			for _, k := range sorted(snap) {
				fmt.Fprintf(w, "meta_protocol.%s.%s.%s: %d\n", s.Protocol, s.StatPrefix, k, snap[k])
			}
		}
		for _, fs := range filterStats(sources) {
			fs.Each(func(k string, v int64, _ bool) { fmt.Fprintf(w, "meta_protocol.%s: %d\n", k, v) })
		}
		for _, c := range clusters(sources) {
			c.EachStat(func(k string, v int64, _ bool) { fmt.Fprintf(w, "cluster.%s.%s: %d\n", c.Name(), k, v) })
		}
	})
}

// filterStats returns the filter stats of every source that has some,
// each set once.
func filterStats(sources []Source) []*filter.Stats {
	seen := map[*filter.Stats]bool{}
	var out []*filter.Stats
	for _, s := range sources {
		if fs := s.Server.FilterStats(); fs != nil && !seen[fs] {
			seen[fs] = true
			out = append(out, fs)
		}
	}
	return out
}

// promName turns a dotted stat name into a Prometheus one.
func promName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// clusters returns the clusters of every source, each once (listeners
// that declare the same cluster share it), by name.
func clusters(sources []Source) []*cluster.Cluster {
	seen := map[*cluster.Cluster]bool{}
	var out []*cluster.Cluster
	for _, s := range sources {
		for _, c := range s.Server.Clusters() {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

func sorted(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type serverStat struct {
	name  string
	value int64
}

// serverStats are the process's gauges, as Envoy's server.* stats:
// goroutines, bytes of live heap objects and heap bytes held.
func serverStats() []serverStat {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	metrics.Read(samples)
	return []serverStat{
		{"goroutines", int64(runtime.NumGoroutine())},
		{"memory_allocated", int64(samples[0].Value.Uint64())},
		{"memory_heap_size", int64(samples[1].Value.Uint64())},
	}
}
