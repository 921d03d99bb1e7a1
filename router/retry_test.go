package router

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metaproxy/metaproxy/api"
	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
)

const retryYAML = `
name: retries
routes:
- name: full
  match: { metadata: [ { name: method, exact_match: get } ] }
  route:
    cluster: a
    timeout: 3s
    retry_policy: { num_retries: 3, per_try_timeout: 1s, retry_on: " reset , connect-failure,per-try-timeout,server-failure" }
- name: default-retries
  match: { metadata: [ { name: method, exact_match: put } ] }
  route:
    cluster: a
    retry_policy: { retry_on: connect-failure }
- name: no-retries
  match: { metadata: [ { name: method, exact_match: del } ] }
  route:
    cluster: a
    timeout: 0s
    retry_policy: { num_retries: 0, retry_on: reset }
- name: plain
  route: { cluster: b }
`

func TestCompileTimeoutAndRetry(t *testing.T) {
	rc, err := api.ParseRouteConfiguration([]byte(retryYAML))
	if err != nil {
		t.Fatal(err)
	}
	tbl, warn, err := Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings %q; timeout and retry_policy are implemented and warn of nothing", warn)
	}
	want := []struct {
		timeout time.Duration
		retry   RetryPolicy
		enabled bool
	}{
		{3 * time.Second, RetryPolicy{NumRetries: 3, PerTryTimeout: time.Second, On: RetryConnectFailure | RetryReset | RetryPerTryTimeout | RetryServerFailure}, true},
		{0, RetryPolicy{NumRetries: 1, On: RetryConnectFailure}, true}, // Envoy's default num_retries
		{0, RetryPolicy{NumRetries: 0, On: RetryReset}, false},
		{0, RetryPolicy{}, false},
	}
	for i, w := range want {
		r := tbl.Routes[i]
		if r.Timeout != w.timeout || r.Retry != w.retry {
			t.Errorf("route %q: timeout %v, retry %+v; want %v, %+v", r.Name, r.Timeout, r.Retry, w.timeout, w.retry)
		}
		if got := r.Retry.Enabled(); got != w.enabled {
			t.Errorf("route %q: Enabled() = %v, want %v", r.Name, got, w.enabled)
		}
	}
}

func TestCompileHashPolicyIsACopy(t *testing.T) {
	rc, err := api.ParseRouteConfiguration([]byte(`routes: [ { route: { cluster: a, hash_policy: [ method, version ] } } ]`))
	if err != nil {
		t.Fatal(err)
	}
	tbl, warn, err := Compile(rc)
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings %q, want none", warn)
	}
	rc.GetRoutes()[0].GetRoute().GetHashPolicy()[0] = "changed"
	if got := tbl.Routes[0].HashPolicy; !reflect.DeepEqual(got, []string{"method", "version"}) {
		t.Errorf("HashPolicy = %q, want [method version] whatever becomes of the config", got)
	}
}

// TestCompileRetryErrors compiles messages that did not go through
// api.Validate.
func TestCompileRetryErrors(t *testing.T) {
	action := func(timeout time.Duration, rp *routev1alpha.RetryPolicy) *routev1alpha.RouteConfiguration {
		a := &routev1alpha.RouteAction{ClusterSpecifier: &routev1alpha.RouteAction_Cluster{Cluster: "a"}, RetryPolicy: rp}
		if timeout != 0 {
			a.Timeout = durationpb.New(timeout)
		}
		return &routev1alpha.RouteConfiguration{Name: "rc", Routes: []*routev1alpha.Route{{Name: "r", Route: a}}}
	}
	for name, c := range map[string]struct {
		rc   *routev1alpha.RouteConfiguration
		want string
	}{
		"unknown condition": {action(0, &routev1alpha.RetryPolicy{RetryOn: "reset,5xx"}),
			`route_config "rc": routes[0] ("r"): route.retry_policy.retry_on: unknown condition "5xx"; valid conditions are connect-failure, reset, per-try-timeout, server-failure`},
		"no condition": {action(0, &routev1alpha.RetryPolicy{}),
			`route.retry_policy.retry_on: at least one of connect-failure, reset, per-try-timeout, server-failure is required`},
		"too many retries": {action(0, &routev1alpha.RetryPolicy{RetryOn: "reset", NumRetries: wrapperspb.UInt32(1 << 31)}),
			`route.retry_policy.num_retries: 2147483648 retries, at most 10 allowed`},
		"negative timeout": {action(-time.Second, nil),
			`route_config "rc": route 0 ("r"): timeout -1s is negative`},
		"per-try timeout above timeout": {action(time.Second, &routev1alpha.RetryPolicy{RetryOn: "reset", PerTryTimeout: durationpb.New(2 * time.Second)}),
			`retry per-try timeout 2s exceeds the route's timeout 1s`},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Compile(c.rc)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseRetryOn(t *testing.T) {
	for in, want := range map[string]RetryOn{
		"":                                 0,
		"  ":                               0,
		"connect-failure":                  RetryConnectFailure,
		"reset":                            RetryReset,
		"per-try-timeout":                  RetryPerTryTimeout,
		"server-failure":                   RetryServerFailure,
		" server-failure ,reset\t,  reset": RetryServerFailure | RetryReset,
		"connect-failure,reset,per-try-timeout,server-failure": RetryConnectFailure | RetryReset | RetryPerTryTimeout | RetryServerFailure,
	} {
		got, err := ParseRetryOn(in)
		if err != nil || got != want {
			t.Errorf("ParseRetryOn(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := ParseRetryOn(got.String()); err != nil || back != got {
			t.Errorf("ParseRetryOn(%q.String() = %q) = %v, %v", got, got.String(), back, err)
		}
	}
	for in, want := range map[string]string{
		"5xx":                "unknown condition \"5xx\"; valid conditions are connect-failure, reset, per-try-timeout, server-failure",
		"reset, Reset":       "unknown condition \"Reset\"",
		"reset connect-fail": "unknown condition \"reset connect-fail\"",
		"reset,":             "empty condition in \"reset,\"; valid conditions are connect-failure, reset, per-try-timeout, server-failure",
		",reset":             "empty condition",
		"reset, ,reset":      "empty condition",
	} {
		if got, err := ParseRetryOn(in); err == nil || !strings.Contains(err.Error(), want) || got != 0 {
			t.Errorf("ParseRetryOn(%q) = %v, %v; want an error containing %q", in, got, err, want)
		}
	}
}

func TestRetryOnString(t *testing.T) {
	for on, want := range map[RetryOn]string{
		0:                                        "",
		RetryReset:                               "reset",
		RetryServerFailure | RetryConnectFailure: "connect-failure,server-failure",
		RetryPerTryTimeout | 0x40:                "per-try-timeout,RetryOn(0x40)",
		0x80:                                     "RetryOn(0x80)",
	} {
		if got := on.String(); got != want {
			t.Errorf("RetryOn(%#x).String() = %q, want %q", uint8(on), got, want)
		}
	}
}

func TestRetryPolicyEnabled(t *testing.T) {
	for _, c := range []struct {
		p    RetryPolicy
		want bool
	}{
		{RetryPolicy{}, false},
		{RetryPolicy{NumRetries: 2}, false},
		{RetryPolicy{On: RetryReset}, false},
		{RetryPolicy{NumRetries: 1, On: RetryReset}, true},
		{RetryPolicy{NumRetries: 1, PerTryTimeout: time.Second, On: RetryPerTryTimeout}, true},
	} {
		if got := c.p.Enabled(); got != c.want {
			t.Errorf("%+v.Enabled() = %v, want %v", c.p, got, c.want)
		}
	}
}

// TestRetryRulesMatchAPI checks that api.Validate and the router accept the
// same retry_on names and num_retries bound (the router parses with
// api.RetryOnList and api.MaxRetries, so they agree by construction).
func TestRetryRulesMatchAPI(t *testing.T) {
	parse := func(rp string) error {
		_, err := api.ParseRouteConfiguration([]byte("routes: [ { route: { cluster: a, retry_policy: " + rp + " } } ]"))
		return err
	}
	for _, name := range append(slices.Clone(api.RetryOnConditions), "5xx", "gateway-error", "refused-stream", "retriable-4xx", "connect_failure") {
		_, rerr := ParseRetryOn(name)
		aerr := parse("{ retry_on: " + name + " }")
		if (rerr == nil) != (aerr == nil) {
			t.Errorf("retry_on %q: router says %v, api says %v", name, rerr, aerr)
		}
		if rerr != nil && aerr != nil && !strings.Contains(aerr.Error(), rerr.Error()) {
			t.Errorf("retry_on %q: api error %q does not contain the router's %q", name, aerr, rerr)
		}
	}
	for _, n := range []int{0, MaxRetries, MaxRetries + 1} {
		r := &Route{Cluster: "a", Retry: RetryPolicy{NumRetries: n, On: RetryReset}}
		_, rerr := NewTable("t", []*Route{r})
		aerr := parse("{ retry_on: reset, num_retries: " + strconv.Itoa(n) + " }")
		if (rerr == nil) != (aerr == nil) {
			t.Errorf("num_retries %d: router says %v, api says %v", n, rerr, aerr)
		}
	}
}
