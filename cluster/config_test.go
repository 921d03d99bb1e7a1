package cluster

import (
	"encoding/json"
	"strings"
	"testing"
)

const oneEndpoint = `"load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":90}}}}]}]}`

func parse(t *testing.T, fields string) (Config, error) {
	t.Helper()
	return ParseConfig(json.RawMessage(`{"name":"c",` + oneEndpoint + `,` + fields + `}`))
}

func TestParseLBConfig(t *testing.T) {
	c, err := parse(t, `"lb_policy":"RING_HASH","ring_hash_lb_config":{"minimum_ring_size":"12","maximum_ring_size":4096,"hash_function":"XX_HASH"}`)
	if err != nil || c.LBPolicy != "RING_HASH" || c.MinRingSize != 12 || c.MaxRingSize != 4096 {
		t.Fatalf("ring_hash_lb_config: %+v, %v", c, err)
	}
	c, err = parse(t, `"lb_policy":"MAGLEV","maglev_lb_config":{"table_size":"7"}`)
	if err != nil || c.LBPolicy != "MAGLEV" || c.MaglevTableSize != 7 {
		t.Fatalf("maglev_lb_config: %+v, %v", c, err)
	}
	c, err = parse(t, `"lb_policy":"MAGLEV","maglev_lb_config":{"table_size":65537}`)
	if err != nil || c.MaglevTableSize != 65537 {
		t.Fatalf("maglev_lb_config as a number: %+v, %v", c, err)
	}
	c, err = parse(t, `"lb_policy":"MAGLEV"`)
	if err != nil || c.MaglevTableSize != 0 || maglevSize(&c) != DefaultMaglevTableSize {
		t.Fatalf("MAGLEV without maglev_lb_config: %+v, %v", c, err)
	}
	if c, err := parse(t, `"ring_hash_lb_config":{"minimum_ring_size":20,"maximum_ring_size":10}`); err != nil || c.LBPolicy != "ROUND_ROBIN" {
		t.Errorf("ring_hash_lb_config of a ROUND_ROBIN cluster (Envoy ignores it): %+v, %v", c, err)
	}
	for name, tc := range map[string]struct{ fields, err string }{
		"murmur":            {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"hash_function":"MURMUR_HASH_2"}`, "MURMUR_HASH_2 is not supported"},
		"murmur by number":  {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"hash_function":1}`, "MURMUR_HASH_2 is not supported"},
		"bad hash":          {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"hash_function":"MD5"}`, "hash_function"},
		"ring typo":         {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"minimum_ring_sise":1}`, `unknown field "minimum_ring_sise"`},
		"min > max":         {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"minimum_ring_size":20,"maximum_ring_size":10}`, "ring hash: minimum_ring_size (20) > maximum_ring_size (10)"},
		"max < default min": {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"maximum_ring_size":100}`, "minimum_ring_size (1024) > maximum_ring_size (100)"},
		"ring too big":      {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"minimum_ring_size":8388609}`, "exceeds 8388608"},
		"empty ring":        {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"minimum_ring_size":0}`, "empty ring"},
		"ring size -1":      {`"lb_policy":"RING_HASH","ring_hash_lb_config":{"minimum_ring_size":-1}`, "not an unsigned integer"},
		"not prime":         {`"lb_policy":"MAGLEV","maglev_lb_config":{"table_size":8}`, "not a prime number"},
		"not prime string":  {`"lb_policy":"MAGLEV","maglev_lb_config":{"table_size":"65536"}`, "not a prime number"},
		"table too big":     {`"lb_policy":"MAGLEV","maglev_lb_config":{"table_size":5000077}`, "exceeds 5000011"},
		"maglev typo":       {`"lb_policy":"MAGLEV","maglev_lb_config":{"tablesize":7}`, `unknown field "tablesize"`},
		"both":              {`"ring_hash_lb_config":{},"maglev_lb_config":{}`, "one of lb_config"},
		"bad policy":        {`"lb_policy":"CLUSTER_PROVIDED"`, "use ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH or MAGLEV"},
	} {
		if _, err := parse(t, tc.fields); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.err)
		}
	}
}

func TestParseCircuitBreakers(t *testing.T) {
	c, err := parse(t, `"lb_policy":"ROUND_ROBIN"`)
	if err != nil || c.MaxRetries != 3 || c.MaxConnections != 1024 || c.MaxPendingRequests != 1024 || c.MaxRequests != 1024 || len(c.Warnings) != 0 {
		t.Fatalf("Envoy's defaults: %+v, %v", c, err)
	}
	c, err = parse(t, `"circuit_breakers":{"thresholds":[{"priority":"DEFAULT","max_retries":0}]}`)
	if err != nil || c.MaxRetries != 0 || len(c.Warnings) != 0 {
		t.Fatalf("max_retries 0: %+v, %v", c, err)
	}
	c, err = parse(t, `"circuit_breakers":{"thresholds":[
	    {"priority":"HIGH","max_retries":9},
	    {"max_retries":5,"max_connections":"100","track_remaining":false},
	    {"priority":"DEFAULT","max_retries":7}],
	  "per_host_thresholds":[{"max_connections":2}]}`)
	if err != nil || c.MaxRetries != 5 || c.MaxConnections != 100 || c.MaxPendingRequests != 1024 || c.MaxRequests != 1024 {
		t.Fatalf("thresholds: %+v, %v", c, err)
	}
	warnings := strings.Join(c.Warnings, "\n")
	for _, w := range []string{"HIGH priority thresholds do not apply",
		"a second DEFAULT threshold is ignored", "per-host circuit breakers are not enforced yet"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("no warning %q in:\n%s", w, warnings)
		}
	}
	if len(c.Warnings) != 3 || strings.Contains(warnings, "max_retries") || strings.Contains(warnings, "track_remaining") {
		t.Errorf("warnings:\n%s", warnings)
	}
	c, err = parse(t, `"circuit_breakers":{"thresholds":[{"max_pending_requests":1,"max_requests":2,"max_connection_pools":3,
	  "retry_budget":{"budget_percent":{"value":25},"min_retry_concurrency":3},"track_remaining":true}]}`)
	if err != nil || c.MaxPendingRequests != 1 || c.MaxRequests != 2 || c.MaxRetries != 3 || len(c.Warnings) != 3 {
		t.Fatalf("unenforced thresholds: %+v, %v", c, err)
	}
	for name, tc := range map[string]struct{ fields, err string }{
		"cb typo":        {`"circuit_breakers":{"threshold":[]}`, `unknown field "threshold"`},
		"threshold typo": {`"circuit_breakers":{"thresholds":[{"max_retry":1}]}`, `unknown field "max_retry"`},
		"budget typo":    {`"circuit_breakers":{"thresholds":[{"retry_budget":{"percent":1}}]}`, `unknown field "percent"`},
		"bad priority":   {`"circuit_breakers":{"thresholds":[{"priority":"LOW"}]}`, "priority"},
		"negative":       {`"circuit_breakers":{"thresholds":[{"max_retries":-1}]}`, "not an unsigned integer"},
		"too many":       {`"circuit_breakers":{"thresholds":[{"max_retries":4294967296}]}`, "exceeds"},
		"not a list":     {`"circuit_breakers":{"thresholds":{}}`, "not a list"},
		"bad percent":    {`"circuit_breakers":{"thresholds":[{"retry_budget":{"budget_percent":{"value":101}}}]}`, "percentage"},
	} {
		if _, err := parse(t, tc.fields); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.err)
		}
	}
	cl := hosts(t, Config{Name: "c", MaxRetries: 5, Endpoints: []Endpoint{{Host: "127.0.0.1", Port: 1}}})
	if n := cl.Thresholds().MaxRetries; n != 5 {
		t.Errorf("Thresholds().MaxRetries = %d", n)
	}
}

func TestParseEndpointHashKeyAndWeight(t *testing.T) {
	c, err := ParseConfig(json.RawMessage(`{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[
	  {"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":90}}},
	   "metadata":{"filter_metadata":{"envoy.lb":{"hash_key":"90","canary":true},"other":{"x":1}}}},
	  {"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":91}}},
	   "metadata":{"filter_metadata":{"envoy.lb":{"hash_key":7}}}}]}]}}`))
	if err != nil || len(c.Endpoints) != 2 || c.Endpoints[0].HashKey != "90" || c.Endpoints[1].HashKey != "" {
		t.Fatalf("hash_key metadata: %+v, %v", c.Endpoints, err)
	}
	for name, js := range map[string]string{
		"weight 0":      `{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":90}}},"load_balancing_weight":0}`,
		"metadata typo": `{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":90}}},"metadata":{"filter_meta":{}}}`,
	} {
		if _, err := ParseConfig(json.RawMessage(`{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[` + js + `]}]}}`)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	big := `{"endpoint":{"address":{"socket_address":{"address":"127.0.0.1","port_value":90}}},"load_balancing_weight":4294967295}`
	if _, err := ParseConfig(json.RawMessage(`{"name":"c","load_assignment":{"endpoints":[{"lb_endpoints":[` + big + `,` + big + `]}]}}`)); err == nil ||
		!strings.Contains(err.Error(), "sum") {
		t.Errorf("weights summing past 2^32-1: %v", err)
	}
}
