package xds

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/config"
)

type clusterSink struct {
	mu   sync.Mutex
	cfgs []cluster.Config
}

func (s *clusterSink) SetClusters(c []cluster.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfgs = c
	return nil
}

func (s *clusterSink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.cfgs {
		out = append(out, c.Name)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Envoy's /clusters?format=json as Envoy writes it (abridged).
const adminJSON = `{"cluster_statuses": [
 {"name": "outbound|20880||svc", "added_via_api": true, "host_statuses": [
  {"address": {"socket_address": {"address": "10.0.0.1", "port_value": 20880}}, "health_status": {"eds_health_status": "HEALTHY"}, "weight": 2, "locality": {"zone": "z1"}},
  {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 20880}}, "health_status": {"eds_health_status": "HEALTHY", "failed_outlier_check": true}, "weight": 1},
  {"address": {"socket_address": {"address": "10.0.0.3", "port_value": 20880}}, "health_status": {"eds_health_status": "UNHEALTHY"}, "weight": 1}]},
 {"name": "BlackHoleCluster", "host_statuses": []}]}`

func TestEnvoyAdminSource(t *testing.T) {
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/clusters" || r.URL.Query().Get("format") != "json" {
			http.NotFound(w, r)
			return
		}
		reads.Add(1)
		w.Write([]byte(adminJSON))
	}))
	defer srv.Close()
	p := NewPool(nil)
	defer p.Close()
	p.ConfigureEnvoyAdmin(&config.EnvoyAdmin{Address: srv.Listener.Addr().String(), Interval: 10 * time.Millisecond})
	mgr := cluster.NewManager(nil)
	mgr.SetDiscovery(p.Discovery)
	sink := &clusterSink{}
	stop, err := p.WatchEnvoyClusters(nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	waitFor(t, "Envoy's clusters", func() bool { return len(sink.names()) == 2 })
	var svc cluster.Config
	for _, c := range sink.cfgs {
		if c.Name == "outbound|20880||svc" {
			svc = c
		}
	}
	c, err := mgr.Acquire(svc)
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Release(c)
	waitFor(t, "the cluster's endpoints", func() bool { return len(c.Hosts()) > 0 })
	if hs := c.Hosts(); len(hs) != 1 || hs[0].Addr != "10.0.0.1:20880" || hs[0].Weight != 2 {
		t.Fatalf("hosts %v: want only the healthy 10.0.0.1 with weight 2", hs)
	}
	n := reads.Load()
	waitFor(t, "more reads", func() bool { return reads.Load() >= n+5 })
}
