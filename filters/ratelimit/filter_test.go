package ratelimit

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter/filtertest"
)

// The service itself (envoyproxy/ratelimit with redis-server) is exercised
// end to end in test/e2e/filter_ratelimit_test.go. Here: the config, and
// what the filter does when the service cannot answer — a closed port, and
// a port that accepts and never answers — against real sockets.

func rlsConfig(cluster string, deny bool, extra string) json.RawMessage {
	d := "false"
	if deny {
		d = "true"
	}
	return json.RawMessage(`{"domain":"production","failure_mode_deny":` + d + `,"timeout":"0.05s",
	  "descriptors":[{"property":"method","descriptor_key":"method"}],
	  "rate_limit_service":{"grpc_service":{"envoy_grpc":{"cluster_name":"` + cluster + `"}}}` + extra + `}`)
}

// withCluster gives the harness's env one cluster, rls, at addr.
func withCluster(h *filtertest.Harness, addr string) {
	host, port, _ := net.SplitHostPort(addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	h.Env.Cluster = func(name string) (cluster.Config, bool) {
		if name != "rls" {
			return cluster.Config{}, false
		}
		return cluster.Config{Name: "rls", Endpoints: []cluster.Endpoint{{Host: host, Port: p}}}, true
	}
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silent accepts connections and never answers.
func silent(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return l.Addr().String()
}

func TestServiceDownHonoursFailureMode(t *testing.T) {
	for _, down := range []struct {
		name string
		addr func(*testing.T) string
	}{{"closed port", closedPort}, {"silent service", silent}} {
		for _, deny := range []bool{false, true} {
			h := filtertest.New(t)
			withCluster(h, down.addr(t))
			f, err := New(rlsConfig("rls", deny, ""), h.Env)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c := h.Run(f, "method", "sayHello")
			c.WaitResumed()
			took := time.Since(start)
			f.(*Filter).Close()
			if deny != (c.Reply() != nil) || deny && c.Reply().Type != codec.ErrUnavailable {
				t.Errorf("%s, failure_mode_deny %v: reply %v", down.name, deny, c.Reply())
			}
			if took > 2*time.Second {
				t.Errorf("%s: the call took %v with a 50 ms timeout", down.name, took)
			}
			p := "test.ratelimit."
			if h.Stats.Value(p+"error") != 1 || h.Stats.Value(p+"failure_mode_allowed") != map[bool]int64{false: 1, true: 0}[deny] {
				t.Errorf("%s, deny %v: error %d, failure_mode_allowed %d", down.name, deny, h.Stats.Value(p+"error"), h.Stats.Value(p+"failure_mode_allowed"))
			}
		}
	}
}

// A request that does not match, or carries none of the descriptors'
// properties, is not checked.
func TestUncheckedRequestsPass(t *testing.T) {
	h := filtertest.New(t)
	withCluster(h, closedPort(t))
	f, err := New(rlsConfig("rls", true, `,"match":{"metadata":[{"name":"method","exact_match":"sayHello"}]}`), h.Env)
	if err != nil {
		t.Fatal(err)
	}
	defer f.(*Filter).Close()
	if c := h.Run(f, "method", "other"); !c.Allowed() || c.Status != 0 {
		t.Errorf("a request outside the match: status %v, reply %v", c.Status, c.Reply())
	}
	g, _ := New(rlsConfig("rls", true, ""), h.Env)
	defer g.(*Filter).Close()
	if c := h.Run(g, "interface", "x"); !c.Allowed() {
		t.Errorf("a request without the descriptor's property: reply %v", c.Reply())
	}
}

func TestConnectionsAreShared(t *testing.T) {
	h := filtertest.New(t)
	withCluster(h, closedPort(t))
	a, _ := New(rlsConfig("rls", false, ""), h.Env)
	b, _ := New(rlsConfig("rls", false, ""), h.Env)
	if a.(*Filter).svc != b.(*Filter).svc {
		t.Fatal("two filters of one service have two connections")
	}
	a.(*Filter).Close()
	b.(*Filter).Close()
	services.mu.Lock()
	defer services.mu.Unlock()
	if len(services.m) != 0 {
		t.Fatalf("%d services left after the last filter closed", len(services.m))
	}
}

func TestConfigErrors(t *testing.T) {
	h := filtertest.New(t)
	withCluster(h, "127.0.0.1:1")
	for name, tc := range map[string]struct {
		js   json.RawMessage
		want string
	}{
		"no config":       {nil, "config is required"},
		"no domain":       {json.RawMessage(`{"descriptors":[{"property":"m","descriptor_key":"m"}],"rate_limit_service":{"grpc_service":{"envoy_grpc":{"cluster_name":"rls"}}}}`), "domain: value is required"},
		"no service":      {json.RawMessage(`{"domain":"d","descriptors":[{"property":"m","descriptor_key":"m"}]}`), "rate_limit_service: value is required"},
		"no cluster name": {json.RawMessage(`{"domain":"d","descriptors":[{"property":"m","descriptor_key":"m"}],"rate_limit_service":{"grpc_service":{}}}`), "cluster_name: value is required"},
		"unknown cluster": {rlsConfig("nope", false, ""), `unknown cluster "nope"`},
		"no descriptors":  {json.RawMessage(`{"domain":"d","rate_limit_service":{"grpc_service":{"envoy_grpc":{"cluster_name":"rls"}}}}`), "at least one descriptor"},
		"no property":     {json.RawMessage(`{"domain":"d","descriptors":[{"descriptor_key":"m"}],"rate_limit_service":{"grpc_service":{"envoy_grpc":{"cluster_name":"rls"}}}}`), "descriptors[0].property"},
		"unknown field":   {json.RawMessage(`{"domian":"d"}`), "domian"},
		"zero timeout":    {rlsConfig("rls", false, `,"timeout":"0s"`), "timeout"},
	} {
		if _, err := New(tc.js, h.Env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
