package codec

import (
	"encoding/json"
	"testing"
)

func TestRegisterRejectsDuplicates(t *testing.T) {
	newF := func(json.RawMessage) (Factory, error) { return nil, nil }
	if err := Register(Protocol{Name: "test-a", Aliases: []string{"vendor.test-a"}, New: newF}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Protocol{
		{Name: "test-a", New: newF},
		{Name: "test-b", Aliases: []string{"vendor.test-a"}, New: newF},
		{Name: "", New: newF},
		{Name: "test-c"},
	} {
		if err := Register(p); err == nil {
			t.Errorf("Register(%q, %v) accepted", p.Name, p.Aliases)
		}
	}
	if _, ok := Lookup("test-b"); ok {
		t.Error("a rejected registration left a name behind")
	}
	if p, ok := Lookup("vendor.test-a"); !ok || p.Name != "test-a" {
		t.Error("alias lookup failed")
	}
}

func TestMetadata(t *testing.T) {
	var m Metadata
	m.Set("Method", "a")
	m.Set("method", "b")
	if m.Len() != 1 || m.Value("METHOD") != "b" {
		t.Fatalf("case-insensitive keys: %v", m.All())
	}
	m.Set("x", "1")
	m.Delete("METHOD")
	if _, ok := m.Get("method"); ok || m.Len() != 1 {
		t.Fatalf("delete: %v", m.All())
	}
	var msg Message
	msg.Meta.Set("k", "v")
	msg.ID = 3
	msg.Reset()
	if msg.ID != 0 || msg.Meta.Len() != 0 || cap(msg.Meta.kv) == 0 {
		t.Fatal("Reset must clear and keep capacity")
	}
}
