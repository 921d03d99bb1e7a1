//go:build cgo

package main

import (
	"strings"
	"testing"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// TestConfigsSharedAndSupersededReleased: a repeated plugin_config shares
// its engine; a newer config of the same listener supersedes it, and the
// old engine is closed when its last connection ends; a connection that
// still arrives at the old config is served by the new one.
func TestConfigsSharedAndSupersededReleased(t *testing.T) {
	v1 := strings.Replace(goodValue, `"stat_prefix": "dubbo"`, `"stat_prefix": "superseded-test"`, 1)
	v2 := strings.Replace(v1, `"connect_timeout": "1s"`, `"connect_timeout": "2s"`, 1)
	lc1 := parser{}.ParseConfig(typedStruct(t, "", v1)).(*listenerConfig)
	again := parser{}.ParseConfig(typedStruct(t, "", v1)).(*listenerConfig)
	if again != lc1 || lc1.err != nil {
		t.Fatalf("the same plugin_config built a second engine (err %v)", lc1.err)
	}
	f1 := lc1.CreateFilter(&fakeCallback{remote: "10.0.0.1:1"})
	if st := f1.OnNewConnection(); st != api.NetworkFilterContinue {
		t.Fatalf("OnNewConnection = %v", st)
	}
	lc2 := parser{}.ParseConfig(typedStruct(t, "", v2)).(*listenerConfig)
	t.Cleanup(lc2.srv.Close)
	if lc2 == lc1 || lc2.err != nil {
		t.Fatalf("a new config shared the old engine (err %v)", lc2.err)
	}
	state := func(lc *listenerConfig) (superseded, closed bool) {
		registry.mu.Lock()
		defer registry.mu.Unlock()
		return lc.superseded, lc.closed
	}
	if s, c := state(lc1); !s || c {
		t.Fatalf("old config: superseded %v closed %v with a connection open", s, c)
	}
	f1.OnEvent(api.RemoteClose)
	if s, c := state(lc1); !s || !c {
		t.Fatalf("old config: superseded %v closed %v after its last connection", s, c)
	}
	late := lc1.CreateFilter(&fakeCallback{remote: "10.0.0.1:2"}).(*downstream)
	if st := late.OnNewConnection(); st != api.NetworkFilterContinue || late.lc != lc2 {
		t.Fatalf("a late connection on the released config: %v, served by the new config %v", st, late.lc == lc2)
	}
	late.OnEvent(api.RemoteClose)
}
