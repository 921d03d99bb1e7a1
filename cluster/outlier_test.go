package cluster

import (
	"strings"
	"testing"
	"time"
)

func outlierCluster(t *testing.T, n int, od OutlierDetection) *Cluster {
	t.Helper()
	var eps []Endpoint
	for i := range n {
		eps = append(eps, Endpoint{Host: "10.0.0." + string(rune('1'+i)), Port: 1, Weight: 1})
	}
	c, err := New(Config{Name: "od", Type: Static, Endpoints: eps, PanicThreshold: DefaultPanicThreshold, OutlierDetection: &od}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func od(mod func(*OutlierDetection)) OutlierDetection {
	o := defaultOutlierDetection
	o.Interval = 10 * time.Millisecond
	o.BaseEjectionTime = 100 * time.Millisecond
	o.MaxEjectionPercent = 100
	mod(&o)
	return o
}

func ejected(h *Host) bool { return h.HealthFlags()&FailedOutlierCheck != 0 }

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestConsecutive5xxEjectsAndSuccessResets(t *testing.T) {
	c := outlierCluster(t, 2, od(func(o *OutlierDetection) { o.Consecutive5xx = 3 }))
	h := c.Hosts()[0]
	c.Report(h, ResultServerFailure)
	c.Report(h, ResultServerFailure)
	c.Report(h, ResultSuccess) // resets
	c.Report(h, ResultServerFailure)
	c.Report(h, ResultConnectSuccess) // counts for nothing without the split
	c.Report(h, ResultServerFailure)
	if ejected(h) {
		t.Fatal("ejected after 2 consecutive failures")
	}
	c.Report(h, ResultTimeout) // a local-origin failure is a 5xx without the split
	if !ejected(h) {
		t.Fatal("not ejected after 3 consecutive failures")
	}
	st := c.Stats()
	if st.EjectionsEnforcedConsecutive5xx.Load() != 1 || st.EjectionsActive.Load() != 1 || st.EjectionsEnforcedTotal.Load() != 1 {
		t.Fatalf("enforced %d active %d total %d", st.EjectionsEnforcedConsecutive5xx.Load(), st.EjectionsActive.Load(), st.EjectionsEnforcedTotal.Load())
	}
	for range 20 {
		if c.Pick(time.Now(), nil) == h {
			t.Fatal("picked the ejected host")
		}
	}
	poll(t, "the host's return", func() bool { return !ejected(h) })
}

func TestGatewayFailureIsDetectedButNotEnforcedByDefault(t *testing.T) {
	c := outlierCluster(t, 2, od(func(o *OutlierDetection) { o.ConsecutiveGatewayFailure, o.Consecutive5xx = 2, 10 }))
	h := c.Hosts()[0]
	c.Report(h, ResultConnectFailed)
	c.Report(h, ResultTimeout)
	if ejected(h) || c.Stats().EjectionsDetectedGatewayFailure.Load() != 1 {
		t.Fatalf("ejected %v, detected %d: gateway failures are detected and, at enforcing 0 %%, not ejected",
			ejected(h), c.Stats().EjectionsDetectedGatewayFailure.Load())
	}
}

func TestMaxEjectionPercentCapsEjections(t *testing.T) {
	c := outlierCluster(t, 4, od(func(o *OutlierDetection) {
		o.Consecutive5xx, o.MaxEjectionPercent, o.BaseEjectionTime = 1, 50, time.Hour
	}))
	for _, h := range c.Hosts() {
		c.Report(h, ResultServerFailure)
	}
	n := 0
	for _, h := range c.Hosts() {
		if ejected(h) {
			n++
		}
	}
	if n != 2 || c.Stats().EjectionsOverflow.Load() != 2 {
		t.Fatalf("%d ejected, overflow %d; want 2 of 4 at 50 %%, 2 overflows", n, c.Stats().EjectionsOverflow.Load())
	}
	// Envoy's default 10 % ejects nothing in a small cluster, unless
	// always_eject_one_host.
	small := outlierCluster(t, 3, od(func(o *OutlierDetection) { o.Consecutive5xx, o.MaxEjectionPercent = 1, 10 }))
	small.Report(small.Hosts()[0], ResultServerFailure)
	if ejected(small.Hosts()[0]) {
		t.Fatal("ejected 1 of 3 hosts at max_ejection_percent 10")
	}
	one := outlierCluster(t, 3, od(func(o *OutlierDetection) { o.Consecutive5xx, o.MaxEjectionPercent, o.AlwaysEjectOneHost = 1, 10, true }))
	one.Report(one.Hosts()[0], ResultServerFailure)
	one.Report(one.Hosts()[1], ResultServerFailure)
	if !ejected(one.Hosts()[0]) || ejected(one.Hosts()[1]) {
		t.Fatal("always_eject_one_host: want exactly the first host ejected")
	}
}

func TestEjectionTimeBacksOff(t *testing.T) {
	c := outlierCluster(t, 2, od(func(o *OutlierDetection) {
		o.Consecutive5xx, o.Interval, o.BaseEjectionTime, o.MaxEjectionTime = 1, time.Hour, time.Minute, 3*time.Minute
	}))
	d := c.outliers
	h := c.Hosts()[0]
	var times []time.Duration
	for range 5 {
		c.Report(h, ResultServerFailure)
		d.mu.Lock()
		times = append(times, time.Duration(h.outlier.ejectedTill-time.Now().UnixNano()).Round(time.Minute))
		h.outlier.ejectedTill = 0
		d.mu.Unlock()
		d.tick(time.Now()) // returns it, and (not ejected) decrements nothing yet
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute, 3 * time.Minute}
	for i := range want {
		if times[i] != want[i] {
			t.Fatalf("ejection times %v, want %v", times, want)
		}
	}
	for range 10 {
		d.tick(time.Now()) // clean intervals shrink the back-off
	}
	c.Report(h, ResultServerFailure)
	if got := time.Duration(h.outlier.ejectedTill - time.Now().UnixNano()).Round(time.Minute); got != time.Minute {
		t.Fatalf("after clean intervals the ejection lasts %v, want the base 1m", got)
	}
}

func TestSplitLocalOriginErrors(t *testing.T) {
	c := outlierCluster(t, 2, od(func(o *OutlierDetection) {
		o.SplitExternalLocalOriginErrors, o.ConsecutiveLocalOriginFailure, o.Consecutive5xx = true, 2, 2
	}))
	h := c.Hosts()[0]
	c.Report(h, ResultConnectFailed)
	c.Report(h, ResultServerFailure) // counted apart
	c.Report(h, ResultConnectSuccess)
	c.Report(h, ResultTimeout)
	if ejected(h) {
		t.Fatal("ejected: local-origin failures were reset by a connection, server failures are counted apart")
	}
	c.Report(h, ResultConnectFailed)
	if !ejected(h) || c.Stats().EjectionsEnforcedLocalOriginFailure.Load() != 1 {
		t.Fatal("not ejected after 2 consecutive local-origin failures")
	}
}

func TestPanicThreshold(t *testing.T) {
	c := outlierCluster(t, 4, od(func(o *OutlierDetection) { o.Consecutive5xx, o.BaseEjectionTime = 1, time.Hour }))
	hs := c.Hosts()
	c.Report(hs[0], ResultServerFailure)
	c.Report(hs[1], ResultServerFailure) // 50 % healthy: not below the threshold
	for range 50 {
		if h := c.Pick(time.Now(), nil); h == hs[0] || h == hs[1] {
			t.Fatal("picked an ejected host at 50 % healthy")
		}
	}
	c.Report(hs[2], ResultServerFailure) // 25 %: panic, every host is used
	seen := map[*Host]bool{}
	for range 200 {
		seen[c.Pick(time.Now(), nil)] = true
	}
	if len(seen) != 4 || c.Stats().LBHealthyPanic.Load() == 0 {
		t.Fatalf("panic mode picked %d of 4 hosts (panic picks %d)", len(seen), c.Stats().LBHealthyPanic.Load())
	}
}

func TestParseOutlierDetectionAndPanicThreshold(t *testing.T) {
	c, err := parse(t, `"outlier_detection":{"consecutive_5xx":3,"interval":"0.5s","base_ejection_time":"2s","max_ejection_percent":50,
	  "consecutive_gateway_failure":"4","enforcing_consecutive_gateway_failure":100,"split_external_local_origin_errors":true,
	  "max_ejection_time":"60s","always_eject_one_host":true,"success_rate_minimum_hosts":3},
	  "common_lb_config":{"healthy_panic_threshold":{"value":25}}`)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultOutlierDetection
	want.Consecutive5xx, want.Interval, want.BaseEjectionTime, want.MaxEjectionPercent = 3, 500*time.Millisecond, 2*time.Second, 50
	want.ConsecutiveGatewayFailure, want.EnforcingConsecutiveGatewayFailure, want.SplitExternalLocalOriginErrors = 4, 100, true
	want.MaxEjectionTime, want.AlwaysEjectOneHost = time.Minute, true
	if *c.OutlierDetection != want || c.PanicThreshold != 25 {
		t.Fatalf("got %+v, panic %v\nwant %+v", *c.OutlierDetection, c.PanicThreshold, want)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "success_rate_minimum_hosts") {
		t.Fatalf("warnings %q, want one for the success-rate field", c.Warnings)
	}
	if c, err := parse(t, `"lb_policy":"ROUND_ROBIN"`); err != nil || c.OutlierDetection != nil || c.PanicThreshold != DefaultPanicThreshold {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	for name, tc := range map[string]struct{ fields, err string }{
		"typo":          {`"outlier_detection":{"consecutive5xx":1}`, `unknown field "consecutive5xx"`},
		"over 100":      {`"outlier_detection":{"max_ejection_percent":101}`, "exceeds 100"},
		"bad duration":  {`"outlier_detection":{"interval":"soon"}`, "interval"},
		"zero interval": {`"outlier_detection":{"interval":"0s"}`, "positive"},
		"panic typo":    {`"common_lb_config":{"healthy_panic":{}}`, `unknown field "healthy_panic"`},
		"panic 101":     {`"common_lb_config":{"healthy_panic_threshold":{"value":101}}`, "percentage"},
	} {
		if _, err := parse(t, tc.fields); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.err)
		}
	}
}

// Round robin shares an ejected host's turns evenly among the others.
func TestRoundRobinSkipsEjectedHostsEvenly(t *testing.T) {
	c := outlierCluster(t, 3, od(func(o *OutlierDetection) {
		o.Consecutive5xx, o.MaxEjectionPercent, o.BaseEjectionTime = 1, 50, time.Hour
	}))
	c.Report(c.Hosts()[0], ResultServerFailure)
	n := map[*Host]int{}
	for range 300 {
		n[c.Pick(time.Now(), nil)]++
	}
	if n[c.Hosts()[0]] != 0 || n[c.Hosts()[1]] != 150 || n[c.Hosts()[2]] != 150 {
		t.Fatalf("picks %d, %d, %d; want 0, 150, 150", n[c.Hosts()[0]], n[c.Hosts()[1]], n[c.Hosts()[2]])
	}
}

// A passing active health check returns an ejected host at once, unless
// successful_active_health_check_uneject_host is off.
func TestActiveHealthCheckUnejects(t *testing.T) {
	for _, uneject := range []bool{true, false} {
		c := outlierCluster(t, 2, od(func(o *OutlierDetection) {
			o.Consecutive5xx, o.BaseEjectionTime, o.SuccessfulActiveHealthCheckUnejectHost = 1, time.Hour, uneject
		}))
		h := c.Hosts()[0]
		c.Report(h, ResultServerFailure)
		c.activeCheckPassed(h)
		if ejected(h) == uneject {
			t.Errorf("successful_active_health_check_uneject_host %v: ejected %v after a passing check", uneject, ejected(h))
		}
	}
}
