package router

import (
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLiteralTableWithoutWeights is what proxy tests do: a Table literal of
// single-cluster routes, handed to Validate without NewTable.
func TestLiteralTableWithoutWeights(t *testing.T) {
	tbl := &Table{Name: "t", Routes: []*Route{
		{Name: "m", Matchers: []Matcher{{Key: "method", Kind: Exact, Value: "x"}}, Cluster: "a"},
		{Name: "all", Cluster: "b", Timeout: time.Second, Retry: RetryPolicy{NumRetries: 2, On: RetryReset}},
	}}
	if err := tbl.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := tbl.Match(md("method", "y")).PickCluster(); got != "b" {
		t.Errorf("picked %q, want b", got)
	}
	if err := (&Table{}).Validate(); err != nil {
		t.Errorf("empty table: %v", err)
	}
}

// TestValidateIsReadOnly checks that Validate changes nothing, neither on a
// table it rejects nor on one in use (the race detector watches the
// latter).
func TestValidateIsReadOnly(t *testing.T) {
	r := &Route{Name: "split", Weighted: []WeightedCluster{{"e", 1}, {"f", 3}}}
	before := *r
	err := (&Table{Routes: []*Route{r}}).Validate()
	if err == nil || !strings.Contains(err.Error(), "build the table with router.NewTable") {
		t.Errorf("unprepared weighted route: error %v", err)
	}
	if !reflect.DeepEqual(before, *r) {
		t.Errorf("Validate changed the route: %+v, was %+v", *r, before)
	}

	tbl, err := NewTable("t", []*Route{r})
	if err != nil {
		t.Fatal(err)
	}
	before = *r
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if err := tbl.Validate(); err != nil {
					t.Error(err)
					return
				}
				if c := tbl.Match(md()).PickCluster(); c != "e" && c != "f" {
					t.Errorf("picked %q", c)
					return
				}
			}
		}()
	}
	wg.Wait()
	if !reflect.DeepEqual(before, *r) {
		t.Errorf("Validate changed the route: %+v, was %+v", *r, before)
	}
}

func TestNewTableErrors(t *testing.T) {
	for name, c := range map[string]struct {
		r    *Route
		want string
	}{
		"nil route":         {nil, "route 0: nil"},
		"no cluster":        {&Route{Name: "r"}, `route 0 ("r"): no cluster`},
		"unnamed weighted":  {&Route{Weighted: []WeightedCluster{{"", 1}}}, "weighted cluster without a name"},
		"zero weights":      {&Route{Weighted: []WeightedCluster{{"a", 0}, {"b", 0}}}, "total weight of 0"},
		"matcher sans key":  {&Route{Cluster: "a", Matchers: []Matcher{{Kind: Exact}}}, "matcher without a metadata name"},
		"regex sans regexp": {&Route{Cluster: "a", Matchers: []Matcher{{Key: "k", Kind: Regex}}}, `regex matcher "k" without a regex`},
		"negative timeout":  {&Route{Cluster: "a", Timeout: -time.Second}, "timeout -1s is negative"},
		"negative per-try":  {&Route{Cluster: "a", Retry: RetryPolicy{NumRetries: 1, On: RetryReset, PerTryTimeout: -1}}, "per-try timeout -1ns is negative"},
		"per-try too long": {&Route{Cluster: "a", Timeout: time.Second, Retry: RetryPolicy{NumRetries: 1, On: RetryReset, PerTryTimeout: 2 * time.Second}},
			"retry per-try timeout 2s exceeds the route's timeout 1s"},
		"negative retries":   {&Route{Cluster: "a", Retry: RetryPolicy{NumRetries: -1, On: RetryReset}}, "-1 retries, want 0 to 10"},
		"too many retries":   {&Route{Cluster: "a", Retry: RetryPolicy{NumRetries: 11, On: RetryReset}}, "11 retries, want 0 to 10"},
		"unknown conditions": {&Route{Cluster: "a", Retry: RetryPolicy{NumRetries: 1, On: RetryReset | 0x80}}, "unknown retry conditions RetryOn(0x80)"},
	} {
		t.Run(name, func(t *testing.T) {
			tbl, err := NewTable("t", []*Route{c.r})
			if err == nil || !strings.Contains(err.Error(), c.want) || tbl != nil {
				t.Errorf("NewTable = %v, %v; want an error containing %q", tbl, err, c.want)
			}
		})
	}
	// A per-try timeout with no route timeout is bounded by the listener's
	// only, and is fine.
	if _, err := NewTable("t", []*Route{{Cluster: "a", Retry: RetryPolicy{NumRetries: 1, On: RetryPerTryTimeout, PerTryTimeout: time.Hour}}}); err != nil {
		t.Error(err)
	}
}

func TestValidateCatchesWeightsChangedAfterNewTable(t *testing.T) {
	r := &Route{Weighted: []WeightedCluster{{"e", 1}, {"f", 3}}}
	tbl, err := NewTable("t", []*Route{r})
	if err != nil {
		t.Fatal(err)
	}
	r.Weighted[1].Weight = 5
	if err := tbl.Validate(); err == nil || !strings.Contains(err.Error(), "changed after router.NewTable (total weight 6, prepared 4)") {
		t.Errorf("error %v", err)
	}
	// NewTable again prepares the route afresh.
	if _, err := NewTable("t", []*Route{r}); err != nil {
		t.Error(err)
	}
}

func TestPickClusterAllocs(t *testing.T) {
	tbl, err := NewTable("t", []*Route{
		{Cluster: "a"},
		{Weighted: []WeightedCluster{{"e", 1}, {"f", 3}, {"g", 0}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tbl.Routes {
		if n := testing.AllocsPerRun(1000, func() { _ = r.PickCluster() }); n != 0 {
			t.Errorf("PickCluster allocates %v times", n)
		}
	}
	for range 1000 {
		if c := tbl.Routes[1].PickCluster(); c == "g" {
			t.Fatal("picked a cluster of weight 0")
		}
	}
}

func BenchmarkPickCluster(b *testing.B) {
	tbl, _ := NewTable("t", []*Route{{Weighted: []WeightedCluster{{"e", 1}, {"f", 3}, {"g", 6}}}})
	r := tbl.Routes[0]
	b.ReportAllocs()
	for b.Loop() {
		_ = r.PickCluster()
	}
}
