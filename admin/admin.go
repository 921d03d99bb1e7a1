// Package admin serves the standalone proxy's admin endpoint: /ready,
// /stats (Envoy-style "name: value" lines), /metrics (Prometheus text) and
// Go's profiler under /debug/pprof/. Like Envoy's admin, it is meant for
// 127.0.0.1 or a trusted network only.
package admin

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"

	"github.com/metaproxy/metaproxy/proxy"
)

// Source is one listener's stats.
type Source struct {
	Protocol   string
	StatPrefix string
	Server     *proxy.Server
}

// Handler returns the admin HTTP handler. ready reports readiness.
func Handler(sources []Source, ready func() bool) http.Handler {
	mux := http.NewServeMux()
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
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, s := range sources {
			snap := s.Server.Stats().Snapshot()
			for _, k := range sorted(snap) {
				fmt.Fprintf(w, "meta_protocol.%s.%s.%s: %d\n", s.Protocol, s.StatPrefix, k, snap[k])
			}
		}
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		byName := map[string][]string{}
		var names []string
		for _, s := range sources {
			for k, v := range s.Server.Stats().Snapshot() {
				name := "metaproxy_" + k
				if _, seen := byName[name]; !seen {
					names = append(names, name)
				}
				byName[name] = append(byName[name], fmt.Sprintf("%s{protocol=%q,stat_prefix=%q} %d", name, s.Protocol, s.StatPrefix, v))
			}
		}
		sort.Strings(names)
		for _, n := range names {
			typ := "counter"
			if strings.HasSuffix(n, "_active") {
				typ = "gauge"
			}
			fmt.Fprintf(w, "# TYPE %s %s\n", n, typ)
			for _, line := range byName[n] {
				fmt.Fprintln(w, line)
			}
		}
	})
	return mux
}

func sorted(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
