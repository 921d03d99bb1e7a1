package cluster

import "testing"

func TestManagerSharesClustersByContent(t *testing.T) {
	m := NewManager(nil)
	cfg := Config{Name: "c", Type: Static, Endpoints: []Endpoint{{Host: "127.0.0.1", Port: 1, Weight: 1}}, MaxRetries: 3}
	a, err := m.Acquire(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Warnings = []string{"warnings are not identity"}
	b, _ := m.Acquire(cfg)
	other := cfg
	other.Endpoints = []Endpoint{{Host: "127.0.0.2", Port: 1, Weight: 1}}
	c, _ := m.Acquire(other)
	if a != b || a == c || m.Len() != 2 {
		t.Fatalf("shared %v, distinct %v, held %d", a == b, a != c, m.Len())
	}
	m.Release(a)
	if m.Len() != 2 {
		t.Fatal("released while still held")
	}
	m.Release(b)
	m.Release(c)
	if m.Len() != 0 {
		t.Fatalf("%d clusters left", m.Len())
	}
}

func TestManagerDiscoveryFollowsTheClustersLife(t *testing.T) {
	m := NewManager(nil)
	started, stopped := 0, 0
	m.SetDiscovery(func(c *Cluster) func() {
		started++
		return func() { stopped++ }
	})
	cfg := Config{Name: "c", Type: Static, Endpoints: []Endpoint{{Host: "127.0.0.1", Port: 1, Weight: 1}}}
	a, _ := m.Acquire(cfg)
	b, _ := m.Acquire(cfg)
	if started != 1 {
		t.Fatalf("discovery started %d times for one shared cluster", started)
	}
	if !a.Same(cfg) || a.Same(Config{Name: "c"}) {
		t.Fatal("Same does not follow the content")
	}
	m.Release(a)
	if stopped != 0 {
		t.Fatal("discovery stopped while the cluster is still held")
	}
	m.Release(b)
	if stopped != 1 {
		t.Fatalf("discovery stopped %d times after the last release", stopped)
	}
}
