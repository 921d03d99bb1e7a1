package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
)

// Dump is what /config_dump shows: the static configuration (the
// bootstrap, or the plugin's plugin_configs) and the dynamic
// configuration from management servers.
type Dump struct {
	// Bootstrap is the configuration file as JSON (nil for none).
	Bootstrap json.RawMessage
	// Dynamic returns the sections of xds.Pool.ConfigDump (nil for none).
	Dynamic func() map[string]any
}

// ConfigDumpHandler serves /config_dump in the shape of Envoy's: a
// "configs" list of typed sections — the BootstrapConfigDump, then the
// clusters, endpoints and Aeraki's meta_protocol_routes sections of what
// management servers delivered, each with version_info and last_updated.
func ConfigDumpHandler(d Dump) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		var configs []any
		if d.Bootstrap != nil {
			configs = append(configs, map[string]any{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump", "bootstrap": d.Bootstrap})
		}
		if d.Dynamic != nil {
			dyn := d.Dynamic()
			for _, k := range []string{"clusters", "endpoints", "meta_protocol_routes"} {
				if v, ok := dyn[k]; ok {
					configs = append(configs, v)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"configs": configs})
	})
}

// ClustersHandler serves /clusters as Envoy's text form: for each host of
// each cluster, "name::ip:port::stat::value" lines — health_flags (Envoy's
// names, "healthy" when none), weight, rq_active and connect failures.
func ClustersHandler(clustersOf func() []*cluster.Cluster) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		now := time.Now()
		for _, c := range clustersOf() {
			for _, h := range c.Hosts() {
				fmt.Fprintf(w, "%s::%s::health_flags::%s\n", c.Name(), h.Addr, healthFlags(h, now))
				fmt.Fprintf(w, "%s::%s::weight::%d\n", c.Name(), h.Addr, h.Weight)
				fmt.Fprintf(w, "%s::%s::rq_active::%d\n", c.Name(), h.Addr, h.Active())
				fmt.Fprintf(w, "%s::%s::cx_connect_fail::%d\n", c.Name(), h.Addr, h.ConnectFailures())
			}
		}
	})
}

// ClustersOf returns the clusters of every source, each once, by name.
func ClustersOf(sources []Source) []*cluster.Cluster { return clusters(sources) }

// healthFlags renders h's health as Envoy's /clusters does.
func healthFlags(h *cluster.Host, now time.Time) string {
	f := h.HealthFlags()
	var s string
	add := func(flag string) {
		if s != "" {
			s += "|"
		}
		s += flag
	}
	if f&cluster.FailedActiveHC != 0 {
		add("/failed_active_hc")
	}
	if f&cluster.FailedOutlierCheck != 0 {
		add("/failed_outlier_check")
	}
	if h.BackingOff(now) > 0 {
		add("/connect_backoff")
	}
	if s == "" {
		return "healthy"
	}
	return s
}
