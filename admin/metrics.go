package admin

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Prometheus metrics, rendered by prometheus/client_golang: the process's
// (Go runtime, process), each listener's stats (metaproxy_<stat>, labelled
// with protocol and stat_prefix, as Aeraki's names them), the filters'
// stats, Envoy's cluster stats (envoy_cluster_<stat>{envoy_cluster_name}
// with the upstream_rq_time histogram), and every listener's registry, where
// filters such as istio_stats register labelled metrics. The engine's
// counters are atomics read at scrape time: the hot path never touches a
// Prometheus object but for the lock-free histogram observations.

var process = func() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}()

// MetricsHandler serves the Prometheus text of the sources that sources
// returns at each scrape.
func MetricsHandler(sources func() []Source) http.Handler {
	return promhttp.HandlerFor(Gatherer(sources), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer gathers the metrics of the sources that sources returns.
func Gatherer(sources func() []Source) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		srcs := sources()
		engine := prometheus.NewRegistry()
		engine.MustRegister(engineCollector{srcs})
		gs := prometheus.Gatherers{process, engine}
		seen := map[*prometheus.Registry]bool{}
		for _, s := range srcs {
			if r := s.Server.Metrics(); r != nil && !seen[r] {
				seen[r] = true
				gs = append(gs, r)
			}
		}
		return gs.Gather()
	})
}

// engineCollector renders the engine's own stats. It is unchecked (it
// describes nothing): its metrics follow the configuration.
type engineCollector struct{ sources []Source }

func (engineCollector) Describe(chan<- *prometheus.Desc) {}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	descs := map[string]*prometheus.Desc{}
	desc := func(name string, labels ...string) *prometheus.Desc {
		d := descs[name]
		if d == nil {
			d = prometheus.NewDesc(name, "metaproxy stat "+name, labels, nil)
			descs[name] = d
		}
		return d
	}
	// emit sends one stat; metaproxy's counters get Prometheus's _total,
	// Envoy's cluster stats keep Envoy's own names (as its /stats/prometheus).
	emit := func(name string, v int64, gauge bool, labels []string, values ...string) {
		switch {
		case gauge:
			ch <- prometheus.MustNewConstMetric(desc(name, labels...), prometheus.GaugeValue, float64(v), values...)
		case strings.HasPrefix(name, "envoy_"):
			ch <- prometheus.MustNewConstMetric(desc(name, labels...), prometheus.CounterValue, float64(v), values...)
		default:
			ch <- prometheus.MustNewConstMetric(desc(name+"_total", labels...), prometheus.CounterValue, float64(v), values...)
		}
	}
	listener := []string{"protocol", "stat_prefix"}
	seenListener := map[[2]string]bool{}
	for _, s := range c.sources {
		key := [2]string{s.Protocol, s.StatPrefix}
		if seenListener[key] {
			continue
		}
		seenListener[key] = true
		s.Server.Stats().Each(func(k string, v int64, gauge bool) {
			emit("metaproxy_"+promName(k), v, gauge, listener, s.Protocol, s.StatPrefix)
		})
	}
	for _, fs := range filterStats(c.sources) {
		fs.Each(func(k string, v int64, gauge bool) { emit("metaproxy_"+promName(k), v, gauge, nil) })
	}
	seenCluster := map[string]bool{}
	for _, cl := range clusters(c.sources) {
		if seenCluster[cl.Name()] { // the same name in two configurations: the first
			continue
		}
		seenCluster[cl.Name()] = true
		cl.EachStat(func(k string, v int64, gauge bool) {
			emit("envoy_cluster_"+promName(k), v, gauge, []string{"envoy_cluster_name"}, cl.Name())
		})
		cl.RqTime().Collect(ch)
	}
}
