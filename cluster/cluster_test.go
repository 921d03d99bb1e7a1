package cluster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig(json.RawMessage(`{"name":"c","type":"STRICT_DNS","connect_timeout":"0.25s","lb_policy":"LEAST_REQUEST",
	  "outlier_detection":{}, "upstream_connection_options":{},
	  "load_assignment":{"cluster_name":"c","endpoints":[{"lb_endpoints":[
	    {"endpoint":{"address":{"socket_address":{"address":"localhost","port_value":80}}},"load_balancing_weight":3},
	    {"endpoint":{"address":{"socket_address":{"address":"127.0.0.2","port_value":81}}},"health_status":"DRAINING"}]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Type != StrictDNS || c.ConnectTimeout != 250*time.Millisecond || c.LBPolicy != "LEAST_REQUEST" ||
		len(c.Endpoints) != 1 || c.Endpoints[0].Weight != 3 || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "upstream_connection_options") ||
		c.OutlierDetection == nil || *c.OutlierDetection != defaultOutlierDetection {
		t.Fatalf("%+v", c)
	}
	for name, js := range map[string]string{
		"typo":         `{"name":"c","conect_timeout":"1s"}`,
		"no endpoints": `{"name":"c"}`,
		"tls":          `{"name":"c","transport_socket":{}}`,
		"bad lb":       `{"name":"c","lb_policy":"MAGIC"}`,
		"bad duration": `{"name":"c","connect_timeout":"soon"}`,
		"bad port":     `{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"1.2.3.4","port_value":0}}}}]}]}}`,
		"typo in la":   `{"name":"c","load_assignment":{"endpoint":[]}}`,
	} {
		if _, err := ParseConfig(json.RawMessage(js)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func hosts(t *testing.T, cfg Config) *Cluster {
	t.Helper()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRoundRobinWeightsAndEjection(t *testing.T) {
	c := hosts(t, Config{Name: "c", Type: Static, LBPolicy: "ROUND_ROBIN", Endpoints: []Endpoint{
		{Host: "10.0.0.1", Port: 1, Weight: 1}, {Host: "10.0.0.2", Port: 1, Weight: 3}}})
	now := time.Now()
	n := map[string]int{}
	for range 400 {
		n[c.Pick(now, nil).Addr]++
	}
	if n["10.0.0.1:1"] != 100 || n["10.0.0.2:1"] != 300 {
		t.Fatalf("weighted round robin: %v", n)
	}
	// An ejected host is skipped until its back-off ends.
	var h1 *Host
	for _, h := range c.Hosts() {
		if h.Addr == "10.0.0.1:1" {
			h1 = h
		}
	}
	h1.ConnectFailed(now)
	for range 100 {
		if c.Pick(now, nil) == h1 {
			t.Fatal("ejected host picked")
		}
	}
	if later := now.Add(time.Second); !h1.Healthy(later) {
		t.Fatal("host still ejected after its back-off")
	}
	h1.ConnectSucceeded()
	if !h1.Healthy(now) {
		t.Fatal("success did not clear the ejection")
	}
}

func TestAllEjectedStillPicks(t *testing.T) {
	c := hosts(t, Config{Name: "c", Type: Static, Endpoints: []Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}, {Host: "10.0.0.2", Port: 1, Weight: 1}}})
	now := time.Now()
	for _, h := range c.Hosts() {
		h.ConnectFailed(now)
	}
	if c.Pick(now, nil) == nil {
		t.Fatal("panic mode: a cluster whose hosts all failed must still pick one")
	}
}

func TestLeastRequest(t *testing.T) {
	c := hosts(t, Config{Name: "c", Type: Static, LBPolicy: "LEAST_REQUEST", Endpoints: []Endpoint{{Host: "10.0.0.1", Port: 1, Weight: 1}, {Host: "10.0.0.2", Port: 1, Weight: 1}}})
	busy := c.Hosts()[0]
	for range 10 {
		busy.Begin()
	}
	now := time.Now()
	n := 0
	for range 200 {
		if c.Pick(now, nil) == busy {
			n++
		}
	}
	// Two random choices: the busy host wins only when both draws pick it.
	if n > 90 {
		t.Fatalf("busy host picked %d/200 times", n)
	}
}

func TestStaticNeedsIP(t *testing.T) {
	if _, err := New(Config{Name: "c", Type: Static, Endpoints: []Endpoint{{Host: "localhost", Port: 1}}}, nil); err == nil {
		t.Fatal("STATIC cluster accepted a host name")
	}
}

func TestStrictDNSResolves(t *testing.T) {
	c := hosts(t, Config{Name: "c", Type: StrictDNS, DNSRefreshRate: time.Hour, Endpoints: []Endpoint{{Host: "localhost", Port: 7, Weight: 1}}})
	hs := c.Hosts()
	if len(hs) == 0 {
		t.Fatal("localhost did not resolve")
	}
	for _, h := range hs {
		if !strings.HasSuffix(h.Addr, ":7") || strings.Contains(h.Addr, "localhost") {
			t.Errorf("resolved host %q is not an ip:port", h.Addr)
		}
	}
}

// TestConnectBackoffGrowsWithJitter: each consecutive connect failure
// doubles the back-off up to ConnectBackoffMax, each jittered to 50-100 %,
// and hosts failing at the same instant do not all retry at the same one.
func TestConnectBackoffGrowsWithJitter(t *testing.T) {
	now := time.Now()
	seen := map[time.Duration]bool{}
	for range 50 {
		var h Host
		for n := 1; n <= 10; n++ {
			h.ConnectFailed(now)
			want := min(ConnectBackoffBase<<(n-1), ConnectBackoffMax)
			got := h.BackingOff(now)
			if got < want/2 || got > want {
				t.Fatalf("failure %d: back-off %v, want in [%v, %v]", n, got, want/2, want)
			}
			if n == 1 {
				seen[got] = true
			}
		}
		if h.TryConnect(now, time.Second) {
			t.Fatal("dial allowed during the back-off")
		}
		h.ConnectSucceeded()
		if !h.TryConnect(now, time.Second) || h.BackingOff(now) != 0 {
			t.Fatal("a success did not end the back-off")
		}
	}
	if len(seen) < 10 {
		t.Errorf("50 hosts' first back-offs took only %d values: no jitter", len(seen))
	}
}
