package filter

import (
	"encoding/json"
	"testing"
)

func TestRegistry(t *testing.T) {
	newF := func(json.RawMessage, Env) (Filter, error) {
		return Func(func(*Exchange) Status { return Continue }), nil
	}
	if err := Register(Definition{Name: "test-f", Aliases: []string{"aeraki.meta_protocol.filters.test-f"}, New: newF}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []Definition{
		{Name: "test-f", New: newF},
		{Name: "router", New: newF},
		{Name: "x", Aliases: []string{"aeraki.meta_protocol.filters.router"}, New: newF},
		{Name: "y"},
	} {
		if err := Register(d); err == nil {
			t.Errorf("Register(%q) accepted", d.Name)
		}
	}
	if d, ok := Lookup("aeraki.meta_protocol.filters.test-f"); !ok || d.Name != "test-f" {
		t.Error("alias lookup failed")
	}
	if !IsRouter("aeraki.meta_protocol.filters.router") || IsRouter("test-f") {
		t.Error("IsRouter")
	}
}

func TestExchangeHeadersAndReply(t *testing.T) {
	var x Exchange
	x.SetRequestHeader("a", "1")
	x.SetRequestHeader("a", "2")
	x.SetResponseHeader("b", "3")
	if len(x.RequestHeaders) != 1 || x.RequestHeaders[0].Value != "2" || len(x.ResponseHeaders) != 1 {
		t.Fatalf("%+v %+v", x.RequestHeaders, x.ResponseHeaders)
	}
	if st := x.Reply(4, "no %s", "way"); st != Stop || x.LocalReply.Message != "no way" {
		t.Fatalf("Reply: %v %+v", st, x.LocalReply)
	}
	x.Reset()
	if x.LocalReply != nil || len(x.RequestHeaders) != 0 {
		t.Fatal("Reset")
	}
}
