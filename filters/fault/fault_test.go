package fault

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
)

// build makes a fault filter of the JSON config js in h's environment.
func build(t testing.TB, h *filtertest.Harness, js string) *Filter {
	t.Helper()
	f, err := New(json.RawMessage(js), h.Env)
	if err != nil {
		t.Fatalf("New(%s): %v", js, err)
	}
	return f.(*Filter)
}

func stat(h *filtertest.Harness, name string) int64 { return h.Stats.Value("test.fault." + name) }

// done ends c as the proxy would once it was answered.
func done(c *filtertest.Call) { c.Complete(filter.Outcome{}) }

func TestRegistered(t *testing.T) {
	for _, n := range []string{Name, Alias} {
		d, ok := filter.Lookup(n)
		if !ok || d.Name != Name {
			t.Errorf("filter.Lookup(%q) = %v, %v; want the fault filter", n, d, ok)
		}
	}
}

func TestDelayResumesOnlyAfterFixedDelay(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, `{"delay":{"fixed_delay":"2s","percentage":{"numerator":100}}}`)
	c := h.Run(f, "method", "sayHello")
	if c.Status != filter.Pause || c.Done() {
		t.Fatalf("status %v, done %v: want paused", c.Status, c.Done())
	}
	if stat(h, "delays_injected") != 1 || stat(h, "active_faults") != 1 {
		t.Errorf("delays_injected %d, active_faults %d; want 1, 1", stat(h, "delays_injected"), stat(h, "active_faults"))
	}
	if n := h.Clock.Advance(2*time.Second - time.Nanosecond); n != 0 || c.Done() {
		t.Fatalf("%d timers fired and done=%v before the delay was over", n, c.Done())
	}
	if n := h.Clock.Advance(time.Nanosecond); n != 1 {
		t.Fatalf("%d timers fired at the end of the delay, want 1", n)
	}
	c.WaitResumed()
	if !c.Allowed() || c.Reply() != nil {
		t.Fatalf("after the delay: final %v, reply %v; want Continue without reply", c.Final(), c.Reply())
	}
	// The fault is active until the exchange ends, as in Envoy.
	if v := stat(h, "active_faults"); v != 1 {
		t.Errorf("active_faults = %d before the exchange ended, want 1", v)
	}
	done(c)
	if v := stat(h, "active_faults"); v != 0 {
		t.Errorf("active_faults = %d after the exchange ended, want 0", v)
	}
	if v := stat(h, "aborts_injected"); v != 0 {
		t.Errorf("aborts_injected = %d, want 0", v)
	}
}

func TestPercentages(t *testing.T) {
	const calls = 1000
	for _, c := range []struct {
		name     string
		js       string
		min, max int // delayed (or aborted) calls of 1000
		abort    bool
	}{
		{"delay 0 %", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":0}}}`, 0, 0, false},
		{"delay unset percentage is 0 %", `{"delay":{"fixed_delay":"1s"}}`, 0, 0, false},
		{"delay 50 %", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":50}}}`, 440, 560, false},
		{"delay 50 % of TEN_THOUSAND", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":5000,"denominator":"TEN_THOUSAND"}}}`, 440, 560, false},
		{"delay 100 %", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":100}}}`, calls, calls, false},
		{"delay numerator over the denominator is 100 %", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":200}}}`, calls, calls, false},
		{"abort 0 %", `{"abort":{"error":"unavailable","percentage":{"numerator":0,"denominator":"MILLION"}}}`, 0, 0, true},
		{"abort unset percentage is 0 %", `{"abort":{"error":"unavailable"}}`, 0, 0, true},
		{"abort 50 %", `{"abort":{"error":"unavailable","percentage":{"numerator":500000,"denominator":"MILLION"}}}`, 440, 560, true},
		{"abort 100 %", `{"abort":{"error":"unavailable","percentage":{"numerator":100}}}`, calls, calls, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := filtertest.New(t)
			f := build(t, h, c.js)
			var hit []*filtertest.Call
			for i := range calls {
				call := h.Run(f, "method", "sayHello", "n", fmt.Sprint(i))
				switch call.Status {
				case filter.Continue:
				case filter.Pause:
					if c.abort {
						t.Fatalf("call %d paused by an abort-only fault", i)
					}
					hit = append(hit, call)
				case filter.Stop:
					if !c.abort || call.Reply().Type != codec.ErrUnavailable {
						t.Fatalf("call %d stopped with %v", i, call.Reply())
					}
					hit = append(hit, call)
				}
			}
			t.Logf("%d of %d calls got the fault", len(hit), calls)
			if len(hit) < c.min || len(hit) > c.max {
				t.Errorf("%d of %d calls got the fault, want %d to %d", len(hit), calls, c.min, c.max)
			}
			counter := map[bool]string{false: "delays_injected", true: "aborts_injected"}[c.abort]
			if v := stat(h, counter); v != int64(len(hit)) {
				t.Errorf("%s = %d, want %d", counter, v, len(hit))
			}
			if !c.abort {
				h.Clock.Advance(time.Second)
				for _, call := range hit {
					call.WaitResumed()
					if !call.Allowed() {
						t.Fatalf("a delayed call ended %v, %v", call.Final(), call.Reply())
					}
				}
			}
			for _, call := range hit {
				done(call)
			}
			if v := stat(h, "active_faults"); v != 0 {
				t.Errorf("active_faults = %d after every exchange ended", v)
			}
		})
	}
}

func TestAbortTypes(t *testing.T) {
	for name, want := range map[string]codec.ErrorType{
		"unavailable": codec.ErrUnavailable, "overloaded": codec.ErrOverloaded, "timeout": codec.ErrTimeout,
		"internal": codec.ErrInternal, "unauthorized": codec.ErrUnauthorized, "unknown_method": codec.ErrUnknownMethod,
	} {
		t.Run(name, func(t *testing.T) {
			h := filtertest.New(t)
			f := build(t, h, `{"abort":{"error":"`+name+`","percentage":{"numerator":100}}}`)
			c := h.Run(f, "method", "sayHello")
			r := c.Reply()
			if c.Status != filter.Stop || r == nil || r.Type != want {
				t.Fatalf("status %v, reply %v; want Stop with %v", c.Status, r, want)
			}
			if !strings.Contains(r.Message, "metaproxy: fault injected") {
				t.Errorf("reply message %q does not say a fault was injected", r.Message)
			}
			if v := stat(h, "aborts_injected"); v != 1 {
				t.Errorf("aborts_injected = %d, want 1", v)
			}
			if v := stat(h, "active_faults"); v != 1 {
				t.Errorf("active_faults = %d before the exchange ended, want 1", v)
			}
			done(c)
			if v := stat(h, "active_faults"); v != 0 {
				t.Errorf("active_faults = %d after it ended, want 0", v)
			}
		})
	}
}

// TestDelayThenAbort: Envoy's order. A delayed request is aborted when its
// delay is over, not before.
func TestDelayThenAbort(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, `{"delay":{"fixed_delay":"0.5s","percentage":{"numerator":100}},
		"abort":{"error":"overloaded","percentage":{"numerator":100}}}`)
	c := h.Run(f, "method", "sayHello")
	if c.Status != filter.Pause || c.Reply() != nil {
		t.Fatalf("status %v, reply %v: want a delay first", c.Status, c.Reply())
	}
	if v := stat(h, "aborts_injected"); v != 0 {
		t.Fatalf("aborts_injected = %d during the delay", v)
	}
	h.Clock.Advance(500 * time.Millisecond)
	c.WaitResumed()
	if r := c.Reply(); r == nil || r.Type != codec.ErrOverloaded {
		t.Fatalf("after the delay: reply %v, want overloaded", r)
	}
	if d, a, act := stat(h, "delays_injected"), stat(h, "aborts_injected"), stat(h, "active_faults"); d != 1 || a != 1 || act != 1 {
		t.Errorf("delays %d, aborts %d, active %d; want 1, 1, 1 (one active fault for both)", d, a, act)
	}
	done(c)
	if v := stat(h, "active_faults"); v != 0 {
		t.Errorf("active_faults = %d after it ended", v)
	}
}

// TestDelayThenAbortHalf: with a 100 % delay and a 50 % abort, the abort
// is drawn after each delay, about half of the delayed calls.
func TestDelayThenAbortHalf(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, `{"delay":{"fixed_delay":"1s","percentage":{"numerator":100}},
		"abort":{"error":"timeout","percentage":{"numerator":50}}}`)
	var calls []*filtertest.Call
	for range 400 {
		calls = append(calls, h.Run(f, "method", "m"))
	}
	h.Clock.Advance(time.Second)
	aborted := 0
	for _, c := range calls {
		c.WaitResumed()
		if c.Reply() != nil {
			aborted++
		}
	}
	if aborted < 160 || aborted > 240 {
		t.Errorf("%d of 400 delayed calls aborted, want about half", aborted)
	}
}

func TestMatch(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, `{"abort":{"error":"unavailable","percentage":{"numerator":100}},
		"match":{"metadata":[{"name":"method","exact_match":"sayHello"},{"name":"x-tenant","prefix_match":"gold-"}]}}`)
	for _, kv := range [][]string{{"method", "sleep", "x-tenant", "gold-1"}, {"method", "sayHello"}, {"method", "sayHello", "x-tenant", "silver"}, {}} {
		if c := h.Run(f, kv...); c.Status != filter.Continue || c.Reply() != nil {
			t.Errorf("request %v (no match): status %v, reply %v; want it untouched", kv, c.Status, c.Reply())
		}
	}
	if v := stat(h, "aborts_injected") + stat(h, "faults_overflow") + stat(h, "active_faults"); v != 0 {
		t.Errorf("stats moved for requests that did not match: %d", v)
	}
	if c := h.Run(f, "method", "sayHello", "x-tenant", "gold-7"); c.Status != filter.Stop || c.Reply().Type != codec.ErrUnavailable {
		t.Errorf("matching request: status %v, reply %v; want aborted", c.Status, c.Reply())
	}
}

func TestMaxActiveFaults(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, `{"delay":{"fixed_delay":"1s","percentage":{"numerator":100}},"max_active_faults":2}`)
	a, b := h.Run(f, "method", "m"), h.Run(f, "method", "m")
	c := h.Run(f, "method", "m")
	if a.Status != filter.Pause || b.Status != filter.Pause {
		t.Fatalf("the first two calls: %v, %v; want both delayed", a.Status, b.Status)
	}
	if c.Status != filter.Continue {
		t.Fatalf("the third call: %v; want it through without a fault (2 active)", c.Status)
	}
	if o, act := stat(h, "faults_overflow"), stat(h, "active_faults"); o != 1 || act != 2 {
		t.Errorf("faults_overflow %d, active_faults %d; want 1, 2", o, act)
	}
	h.Clock.Advance(time.Second)
	a.WaitResumed()
	b.WaitResumed()
	// Resumed but not ended: still active.
	if d := h.Run(f, "method", "m"); d.Status != filter.Continue {
		t.Errorf("a call while 2 faulted exchanges are still in flight: %v, want Continue", d.Status)
	}
	done(a)
	e := h.Run(f, "method", "m")
	if e.Status != filter.Pause {
		t.Errorf("a call after one faulted exchange ended: %v, want delayed", e.Status)
	}
	h.Clock.Advance(time.Second)
	e.WaitResumed()
	done(b)
	done(e)
	if o, act := stat(h, "faults_overflow"), stat(h, "active_faults"); o != 2 || act != 0 {
		t.Errorf("faults_overflow %d, active_faults %d; want 2, 0", o, act)
	}
	// An exchange without a fault leaves the gauge alone when it ends.
	done(c)
	if act := stat(h, "active_faults"); act != 0 {
		t.Errorf("active_faults = %d after a fault-free exchange ended", act)
	}
}

func TestMaxActiveFaultsZeroDisables(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, `{"abort":{"error":"internal","percentage":{"numerator":100}},"max_active_faults":0}`)
	for range 3 {
		if c := h.Run(f, "method", "m"); c.Status != filter.Continue {
			t.Fatalf("status %v, want Continue", c.Status)
		}
	}
	if o, a := stat(h, "faults_overflow"), stat(h, "aborts_injected"); o != 3 || a != 0 {
		t.Errorf("faults_overflow %d, aborts_injected %d; want 3, 0", o, a)
	}
}

// TestTwoFaultFiltersCountOnce: two fault filters of one listener share
// the stats, and an exchange both delay is one active fault.
func TestTwoFaultFiltersCountOnce(t *testing.T) {
	h := filtertest.New(t)
	js := `{"delay":{"fixed_delay":"1s","percentage":{"numerator":100}},"max_active_faults":1}`
	chain := filter.NewChain([]filter.Named{{Name: "f1", Filter: build(t, h, js)}, {Name: "f2", Filter: build(t, h, js)}}, nil)
	c := h.Send(chain, filtertest.Request("method", "m"), "10.0.0.1:1")
	h.Clock.Advance(time.Second)
	// The first resume runs the second filter in the timer's goroutine,
	// which arms the second delay.
	for deadline := time.Now().Add(10 * time.Second); h.Clock.Pending() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second fault filter did not delay the exchange")
		}
	}
	h.Clock.Advance(time.Second)
	c.WaitResumed()
	if d, a, o := stat(h, "delays_injected"), stat(h, "active_faults"), stat(h, "faults_overflow"); d != 2 || a != 1 || o != 0 {
		t.Errorf("delays %d, active %d, overflow %d; want 2, 1, 0", d, a, o)
	}
	done(c)
	if a := stat(h, "active_faults"); a != 0 {
		t.Errorf("active_faults = %d after the exchange ended", a)
	}
}

func TestStatNamesUseTheListenerPrefix(t *testing.T) {
	h := filtertest.New(t)
	h.Env.StatPrefix = "ingress"
	build(t, h, `{"abort":{"error":"internal","percentage":{"numerator":100}}}`)
	var names []string
	h.Stats.Each(func(n string, _ int64, gauge bool) { names = append(names, fmt.Sprintf("%s gauge=%v", n, gauge)) })
	want := "ingress.fault.aborts_injected gauge=false,ingress.fault.active_faults gauge=true,ingress.fault.delays_injected gauge=false,ingress.fault.faults_overflow gauge=false"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("stats %s\nwant  %s", got, want)
	}
}

func TestConfigErrors(t *testing.T) {
	const ts = `{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"type.googleapis.com/metaproxy.filters.fault.v1.Fault","value":%s}`
	for _, c := range []struct{ js, want string }{
		{``, "a Fault config is required"},
		{`{}`, "delay or abort is required"},
		{`{"match":{"metadata":[{"name":"method","exact_match":"m"}]}}`, "delay or abort is required"},
		{`{"delay":{"percentage":{"numerator":10}}}`, "delay.fixed_delay: value is required"},
		{`{"delay":{"fixed_delay":"0s"}}`, "delay.fixed_delay: 0s: value must be greater than 0"},
		{`{"delay":{"fixed_delay":"-1s"}}`, "delay.fixed_delay"},
		{`{"abort":{"percentage":{"numerator":10}}}`, "abort.error: value is required (one of unavailable, overloaded, timeout, internal, unauthorized, unknown_method)"},
		{`{"abort":{"error":"teapot"}}`, `abort.error: unknown error type "teapot"`},
		{`{"abort":{"error":"route_not_found"}}`, `abort.error: unknown error type "route_not_found"`},
		{`{"abort":{"error":"Unavailable"}}`, `abort.error: unknown error type "Unavailable"`},
		{`{"abort":{"error":"internal"},"match":{"metadata":[{"exact_match":"m"}]}}`, "match.metadata[0]: name is required"},
		{`{"abort":{"error":"internal"},"match":{"metadata":[{"name":"m","safe_regex_match":{"regex":"("}}]}}`, "match.metadata[0]"},
		{`{"abort":{"error":"internal","percentage":{"numerator":1,"denominator":"HALF"}}}`, "HALF"},
		{`{"abort":{"error":"internal"},"percent":5}`, "percent"},
		{`{"delay":{"fixed_delay":"1s","percent":50}}`, "percent"},
		{`{"abort":{"error":"internal","http_status":503}}`, "http_status"},
		{fmt.Sprintf(ts, `{"abort":{"error":"internal"},"headers":[]}`), "headers"},
		{fmt.Sprintf(ts, `{"delay":{"fixed_delay":"1s","type":"FIXED"}}`), "type"},
		{fmt.Sprintf(ts, `{"delay":{"fixed_delay":"0s"}}`), "delay.fixed_delay: 0s: value must be greater than 0"},
		{`{"@type":"type.googleapis.com/udpa.type.v1.TypedStruct","type_url":"type.googleapis.com/aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit","value":{}}`, "TypedStruct holds"},
	} {
		h := filtertest.New(t)
		_, err := New(json.RawMessage(c.js), h.Env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%s): %v; want an error containing %q", c.js, err, c.want)
		}
	}
}

func TestTypedStructConfig(t *testing.T) {
	h := filtertest.New(t)
	for _, wrapper := range []string{"udpa.type.v1.TypedStruct", "xds.type.v3.TypedStruct"} {
		f := build(t, h, `{"@type":"type.googleapis.com/`+wrapper+`","type_url":"type.googleapis.com/metaproxy.filters.fault.v1.Fault",
			"value":{"abort":{"error":"unauthorized","percentage":{"numerator":100}},"max_active_faults":10}}`)
		if c := h.Run(f, "method", "m"); c.Reply() == nil || c.Reply().Type != codec.ErrUnauthorized {
			t.Errorf("%s config: reply %v, want unauthorized", wrapper, c.Reply())
		}
	}
	// Envoy's typed_config form, and JSON field names.
	f := build(t, h, `{"@type":"type.googleapis.com/metaproxy.filters.fault.v1.Fault","delay":{"fixedDelay":"1.5s","percentage":{"numerator":100}}}`)
	if f.s.delay != 1500*time.Millisecond {
		t.Errorf("fixedDelay 1.5s parsed as %v", f.s.delay)
	}
}

// TestNoPanics runs every kind of config on requests without metadata,
// with odd metadata, and with a nil request's metadata absent: the filter
// must never panic (the chain would turn a panic into an internal error).
func TestNoPanics(t *testing.T) {
	h := filtertest.New(t)
	configs := []string{
		`{"delay":{"fixed_delay":"1ms","percentage":{"numerator":50}},"abort":{"error":"timeout","percentage":{"numerator":50}},"max_active_faults":3}`,
		`{"abort":{"error":"unknown_method","percentage":{"numerator":1,"denominator":"TEN_THOUSAND"}},"match":{"metadata":[{"name":"x","present_match":true,"invert_match":true}]}}`,
		`{"delay":{"fixed_delay":"1ms","percentage":{"numerator":4294967295}},"match":{"metadata":[{"name":"method","safe_regex_match":{"regex":"^s.*"}}]}}`,
	}
	for _, js := range configs {
		f := build(t, h, js)
		for i, kv := range [][]string{{}, {"method", ""}, {"method", "sayHello"}, {"", ""}, {"x", strings.Repeat("y", 1000)}} {
			for range 20 {
				c := h.Run(f, kv...)
				h.Clock.Advance(time.Millisecond)
				c.WaitResumed()
				if r := c.Reply(); r != nil && strings.Contains(r.Message, "failed") {
					t.Fatalf("config %s, request %d: %v (a panic)", js, i, r)
				}
				done(c)
			}
		}
	}
	if a := stat(h, "active_faults"); a != 0 {
		t.Errorf("active_faults = %d after every exchange ended", a)
	}
}

// BenchmarkFault measures OnRequest and OnComplete on the paths that
// inject nothing: a request the match rejects, and a matching request
// under a 0 % fault.
func BenchmarkFault(b *testing.B) {
	for _, c := range []struct{ name, js string }{
		{"no-match", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":100}},"abort":{"error":"internal","percentage":{"numerator":100}},
			"match":{"metadata":[{"name":"method","exact_match":"sayHello"}]}}`},
		{"match-0-percent", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":0}},"abort":{"error":"internal","percentage":{"numerator":0}},
			"match":{"metadata":[{"name":"method","exact_match":"other"}]}}`},
		{"match-all-0-percent", `{"delay":{"fixed_delay":"1s","percentage":{"numerator":0}},"abort":{"error":"internal","percentage":{"numerator":0}}}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := filtertest.New(b)
			f := build(b, h, c.js)
			x := &filter.Exchange{Request: filtertest.Request("interface", "org.apache.dubbo.samples.DemoService", "method", "other")}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if f.OnRequest(x) != filter.Continue {
					b.Fatal("a fault was injected")
				}
				f.OnComplete(x)
			}
		})
	}
}
