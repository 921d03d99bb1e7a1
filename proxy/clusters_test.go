package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// Routes and clusters swapped under live traffic, as a control plane
// (RDS, CDS) swaps them.
func TestDiscoveredRoutesAndClustersSwapLive(t *testing.T) {
	e := newTestEnv(t, true)
	down := newMemConn()
	ss := e.srv.NewSession(down, "c")
	call := func(id uint64) codec.Message {
		t.Helper()
		ss.OnData(req(id, "x"))
		return down.waitFrames(t, int(id))[id-1]
	}
	toX := &router.Table{Name: "rds", Routes: []*router.Route{{Name: "x", Cluster: "cx"}}}
	if err := e.srv.SetRoutes(toX); err == nil || !strings.Contains(err.Error(), `unknown cluster "cx"`) {
		t.Fatalf("SetRoutes accepted a route to a missing cluster: %v", err)
	}
	if err := e.srv.SetDiscoveredRoutes(toX); err != nil {
		t.Fatal(err)
	}
	if m := call(1); m.Meta.Value("error") != codec.ErrClusterNotFound.String() {
		t.Fatalf("before CDS: %v %q", m.Kind, m.Meta.Value("error"))
	}
	ca := e.srv.refs["ca"].cl
	cfgs := append([]cluster.Config(nil), e.srv.cfg.Clusters...)
	cx := cluster.Config{Name: "cx", Type: cluster.Static, ConnectTimeout: time.Second, Endpoints: []cluster.Endpoint{{Host: "10.0.0.2", Port: 1, Weight: 1}}}
	if err := e.srv.SetClusters(append(cfgs, cx)); err != nil {
		t.Fatal(err)
	}
	if m := call(2); m.Kind != codec.KindResponse || from(m) != "b" {
		t.Fatalf("after CDS: %v from %q (%s)", m.Kind, from(m), m.Meta.Value("msg"))
	}
	if e.srv.refs["ca"].cl != ca {
		t.Fatal("an unchanged cluster was rebuilt by SetClusters")
	}
	cx.Endpoints = []cluster.Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}} // changed content: a new cluster
	if err := e.srv.SetClusters(append(cfgs, cx)); err != nil {
		t.Fatal(err)
	}
	if m := call(3); from(m) != "a" {
		t.Fatalf("after the cluster changed: from %q", from(m))
	}
	if err := e.srv.SetClusters(append(cfgs, cfgs[0])); err == nil {
		t.Fatal("a duplicate cluster was accepted")
	}
	if m := call(4); from(m) != "a" {
		t.Fatalf("a refused update changed the clusters: from %q", from(m))
	}
	if err := e.srv.SetClusters(cfgs); err != nil {
		t.Fatal(err)
	}
	if m := call(5); m.Meta.Value("error") != codec.ErrClusterNotFound.String() {
		t.Fatalf("after the cluster left: %v %q", m.Kind, m.Meta.Value("error"))
	}
}
