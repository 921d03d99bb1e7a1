package localratelimit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
)

// aeraki loads the filter config of one of Aeraki's local rate limit test
// configurations (api/testdata/local_ratelimit_<name>.yaml), as the host
// hands it over.
func aeraki(t *testing.T, name string) json.RawMessage {
	t.Helper()
	y, err := os.ReadFile(filepath.Join("..", "..", "api", "testdata", "local_ratelimit_"+name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := api.ParseProxy(y)
	if err != nil {
		t.Fatal(err)
	}
	js, err := api.ConfigJSON(p.GetMetaProtocolFilters()[0].GetConfig())
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func build(t *testing.T, h *filtertest.Harness, js json.RawMessage) filter.Filter {
	t.Helper()
	f, err := New(js, h.Env)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// calls makes n calls of method and returns how many passed; every other
// one must get the overloaded error.
func calls(t *testing.T, h *filtertest.Harness, f filter.Filter, method string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		c := h.Run(f, "method", method)
		switch {
		case c.Allowed():
			ok++
		case c.Reply() == nil || c.Reply().Type != codec.ErrOverloaded:
			t.Fatalf("%s: a limited call got %v, want the overloaded error", method, c.Reply())
		}
	}
	return ok
}

const prefix = "outbound|9090||thrift-sample-server.meta-thrift.svc.cluster.local"

// Aeraki's five local rate limit test configurations, with what each one
// shows: condition precedence, the default bucket's fallback, no bucket
// means no limit.
func TestAerakiConfigurations(t *testing.T) {
	for _, tc := range []struct {
		name         string
		method       string
		n, want      int
		refill       time.Duration // after it, the bucket is full again
		refillTokens int
	}{
		// The condition's bucket (2 per 30 s) wins over the default (5 per 5 s).
		{"full_match_condition", "sayHello", 10, 2, 30 * time.Second, 2},
		// No condition matches: the default bucket, 3 per 30 s.
		{"full_no_matched_condition", "sayHello", 10, 3, 30 * time.Second, 3},
		// Only a condition, which matches: 2 per 10 s.
		{"no_global_bucket_match_condition", "sayHello", 10, 2, 10 * time.Second, 2},
		// Only a condition, which does not match: no limit.
		{"no_global_bucket_no_matched_condition", "sayHello", 10, 10, 0, 10},
		// Only the default bucket: 2 per 30 s (Aeraki's e2e: 2 of 10 succeed).
		{"only_global_token", "sayHello", 10, 2, 30 * time.Second, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := filtertest.New(t)
			f := build(t, h, aeraki(t, tc.name))
			if got := calls(t, h, f, tc.method, tc.n); got != tc.want {
				t.Fatalf("%d of %d calls passed, want %d", got, tc.n, tc.want)
			}
			if tc.refill > 0 {
				h.Clock.Advance(tc.refill - time.Millisecond)
				if got := calls(t, h, f, tc.method, 1); got != 0 {
					t.Fatalf("a call passed before the fill interval ended")
				}
				h.Clock.Advance(time.Millisecond)
				if got := calls(t, h, f, tc.method, tc.n); got != tc.refillTokens {
					t.Fatalf("after a fill %d calls passed, want %d", got, tc.refillTokens)
				}
			}
			limited := int64(2*tc.n + 1 - tc.want - tc.refillTokens)
			if tc.refill == 0 {
				limited = 0
			}
			ok, rl := h.Stats.Value(prefix+".local_rate_limit.ok"), h.Stats.Value(prefix+".local_rate_limit.rate_limited")
			if tc.refill > 0 && (ok != int64(tc.want+tc.refillTokens) || rl != limited) {
				t.Fatalf("stats ok %d, rate_limited %d; want %d, %d", ok, rl, tc.want+tc.refillTokens, limited)
			}
		})
	}
}

// The default bucket still serves other methods when a condition's is
// empty.
func TestConditionAndDefaultAreSeparate(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, aeraki(t, "full_match_condition"))
	if got := calls(t, h, f, "sayHello", 5); got != 2 {
		t.Fatalf("sayHello: %d passed, want 2", got)
	}
	if got := calls(t, h, f, "ping", 8); got != 5 {
		t.Fatalf("ping (default bucket 5): %d passed, want 5", got)
	}
}

// Fills add tokens_per_fill per interval up to max_tokens, however long
// the bucket sat idle.
func TestFillsAreCappedAtMaxTokens(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, json.RawMessage(`{"stat_prefix":"p","token_bucket":{"max_tokens":4,"tokens_per_fill":1,"fill_interval":"1s"}}`))
	if got := calls(t, h, f, "m", 6); got != 4 {
		t.Fatalf("%d passed, want 4", got)
	}
	h.Clock.Advance(2 * time.Second)
	if got := calls(t, h, f, "m", 6); got != 2 {
		t.Fatalf("after 2 fills of 1: %d passed, want 2", got)
	}
	h.Clock.Advance(time.Hour)
	if got := calls(t, h, f, "m", 6); got != 4 {
		t.Fatalf("after an hour: %d passed, want max_tokens 4", got)
	}
}

// Every connection of the listener shares the buckets: concurrent takes
// never give out more tokens than there are.
func TestConcurrentTakesNeverOverspend(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, json.RawMessage(`{"stat_prefix":"p","token_bucket":{"max_tokens":100,"fill_interval":"1s"}}`))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 50 {
				if f.OnRequest(&filter.Exchange{Request: filtertest.Request("method", "m")}) == filter.Continue {
					n++
				}
			}
			mu.Lock()
			ok += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ok != 100 {
		t.Fatalf("%d of 400 concurrent calls passed, want exactly 100", ok)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ js, want string }{
		"no config":             {``, "config is required"},
		"no stat prefix":        {`{"token_bucket":{"max_tokens":1,"fill_interval":"1s"}}`, "stat_prefix: value is required"},
		"no bucket":             {`{"stat_prefix":"s"}`, "token_bucket or conditions is required"},
		"short fill":            {`{"stat_prefix":"s","token_bucket":{"max_tokens":1,"fill_interval":"0.01s"}}`, "token_bucket.fill_interval: 10ms is shorter than the minimum 50ms"},
		"zero tokens":           {`{"stat_prefix":"s","conditions":[{"match":{},"token_bucket":{"fill_interval":"1s"}}]}`, "conditions[0].token_bucket.max_tokens: value must be greater than 0"},
		"zero per fill":         {`{"stat_prefix":"s","token_bucket":{"max_tokens":1,"tokens_per_fill":0,"fill_interval":"1s"}}`, "tokens_per_fill: value must be greater than 0"},
		"condition no match":    {`{"stat_prefix":"s","conditions":[{"token_bucket":{"max_tokens":1,"fill_interval":"1s"}}]}`, "conditions[0].match: value is required"},
		"condition no bucket":   {`{"stat_prefix":"s","conditions":[{"match":{}}]}`, "conditions[0].token_bucket: value is required"},
		"bad regex":             {`{"stat_prefix":"s","conditions":[{"match":{"metadata":[{"name":"m","safe_regex_match":{"regex":"("}}]},"token_bucket":{"max_tokens":1,"fill_interval":"1s"}}]}`, "conditions[0].match.metadata[0]"},
		"unknown field":         {`{"stat_prefix":"s","token_bucket":{"max_tokns":1}}`, "max_tokns"},
		"no fill interval":      {`{"stat_prefix":"s","token_bucket":{"max_tokens":1}}`, "fill_interval: value is required"},
		"fill interval not set": {`{"stat_prefix":"s","token_bucket":{"max_tokens":1,"fill_interval":"soon"}}`, "soon"},
	} {
		h := filtertest.New(t)
		if _, err := New(json.RawMessage(tc.js), h.Env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func BenchmarkLocalRateLimit(b *testing.B) {
	h := filtertest.New(b)
	f, err := New(json.RawMessage(`{"stat_prefix":"p","token_bucket":{"max_tokens":1000000000,"fill_interval":"1s"},
	  "conditions":[{"match":{"metadata":[{"name":"method","exact_match":"other"}]},"token_bucket":{"max_tokens":1,"fill_interval":"1s"}}]}`), h.Env)
	if err != nil {
		b.Fatal(err)
	}
	x := &filter.Exchange{Request: filtertest.Request("method", "sayHello", "interface", "org.apache.dubbo.samples.basic.api.DemoService")}
	b.ReportAllocs()
	for b.Loop() {
		if f.OnRequest(x) != filter.Continue {
			b.Fatal("limited")
		}
	}
}
