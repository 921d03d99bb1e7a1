package codec

import (
	"strings"
	"testing"
)

// TestMetadataLengthIndex: the length bits that skip scans never hide a key
// (lengths 1 and 65 share one), and Delete, Reset and Message.Reset keep
// them right.
func TestMetadataLengthIndex(t *testing.T) {
	var m Metadata
	long := strings.Repeat("k", 65) // shares its length bit with "x"
	m.Set("Interface", "a")
	m.Set("x", "1")
	m.Set(long, "2")
	m.Set("interface", "b") // keys are case-insensitive: replaced
	if m.Len() != 3 || m.Value("INTERFACE") != "b" || m.Value("x") != "1" || m.Value(long) != "2" {
		t.Fatalf("after Set: %v", m.All())
	}
	for _, k := range []string{"y", "method", strings.Repeat("k", 64), strings.Repeat("k", 129)} {
		if v, ok := m.Get(k); ok {
			t.Fatalf("Get(%q) = %q, present", k, v)
		}
	}
	m.Delete("X")
	if _, ok := m.Get("x"); ok || m.Value(long) != "2" || m.Len() != 2 {
		t.Fatalf("after Delete: %v", m.All())
	}
	m.Set("x", "3")
	if m.Value("x") != "3" || m.Len() != 3 {
		t.Fatalf("Set after Delete: %v", m.All())
	}
	m.Reset()
	if _, ok := m.Get("interface"); ok || m.Len() != 0 {
		t.Fatalf("after Reset: %v", m.All())
	}
	msg := Message{}
	msg.Meta.Set("method", "m")
	msg.Reset()
	if _, ok := msg.Meta.Get("method"); ok {
		t.Fatal("Message.Reset kept a key")
	}
	msg.Meta.Set("method", "n")
	if msg.Meta.Value("method") != "n" || msg.Meta.Len() != 1 {
		t.Fatalf("after Message.Reset: %v", msg.Meta.All())
	}
}

// BenchmarkMetadataFill: a Dubbo request's worth of keys set into a reused
// Metadata, then one present and one absent key read.
func BenchmarkMetadataFill(b *testing.B) {
	keys := []string{"interface", "method", "dubbo", "path", "version", "tenant", "traceparent", "group", "timeout", "x-request-id", "side", "application"}
	var m Metadata
	for b.Loop() {
		m.Reset()
		for _, k := range keys {
			m.Set(k, k)
		}
		_, _ = m.Get("group")
		_, _ = m.Get("x-tenant")
	}
}
