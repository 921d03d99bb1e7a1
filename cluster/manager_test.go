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

func TestSetsShareAManager(t *testing.T) {
	m := NewManager(nil)
	cfgs := []Config{{Name: "c", Type: Static, Endpoints: []Endpoint{{Host: "127.0.0.1", Port: 1, Weight: 1}}}}
	s1, err := NewSet(m, cfgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSet(m, cfgs, nil)
	if s1.Get("c") != s2.Get("c") {
		t.Fatal("two listeners with the same cluster got two clusters")
	}
	s1.Close()
	s2.Close()
	if m.Len() != 0 {
		t.Fatal("clusters left after both sets closed")
	}
	if _, err := NewSet(m, append(cfgs, cfgs[0]), nil); err == nil || m.Len() != 0 {
		t.Fatalf("duplicate accepted (%v) or leaked (%d)", err, m.Len())
	}
}
