package router

import (
	"testing"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/codec"
)

const routesYAML = `
name: test
routes:
- name: exact-and-header
  match:
    metadata:
    - name: interface
      exact_match: org.apache.dubbo.samples.basic.api.DemoService
    - name: method
      exact_match: sayHello
    - name: foo
      exact_match: bar
  route: { cluster: a }
  request_mutation: [ { key: k, value: v } ]
- name: prefix
  match: { metadata: [ { name: method, prefix_match: say } ] }
  route: { cluster: b }
- name: regex-ignorecase
  match: { metadata: [ { name: method, safe_regex_match: { regex: "get[A-Z].*" } }, { name: version, string_match: { exact: V1, ignore_case: true } } ] }
  route: { cluster: c }
- name: range-and-absent
  match: { metadata: [ { name: shard, range_match: { start: 10, end: 20 } }, { name: canary, present_match: false } ] }
  route: { cluster: d }
- name: inverted
  match: { metadata: [ { name: method, exact_match: ping, invert_match: true } ] }
  route:
    weighted_clusters:
      clusters: [ { name: e, weight: 1 }, { name: f, weight: 3 } ]
`

func md(kv ...string) *codec.Metadata {
	var m codec.Metadata
	for i := 0; i+1 < len(kv); i += 2 {
		m.Set(kv[i], kv[i+1])
	}
	return &m
}

func TestCompileAndMatch(t *testing.T) {
	rc, err := api.ParseRouteConfiguration([]byte(routesYAML))
	if err != nil {
		t.Fatal(err)
	}
	tbl, warn, err := Compile(rc)
	if err != nil || len(warn) != 0 {
		t.Fatalf("compile: %v %v", err, warn)
	}
	cases := []struct {
		name string
		md   *codec.Metadata
		want string // route name, "" = none
	}{
		{"all three keys", md("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayHello", "foo", "bar"), "exact-and-header"},
		{"keys are case-insensitive", md("Interface", "org.apache.dubbo.samples.basic.api.DemoService", "METHOD", "sayHello", "Foo", "bar"), "exact-and-header"},
		{"attachment differs", md("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayHello", "foo", "baz"), "prefix"},
		{"regex + ignore case", md("method", "getUser", "version", "v1"), "regex-ignorecase"},
		{"regex must match whole value", md("method", "xgetUser", "version", "v1", "shard", "15"), "range-and-absent"},
		{"range excludes end", md("method", "ping", "shard", "20"), ""},
		{"present false", md("method", "ping", "shard", "12", "canary", "1"), ""},
		{"inverted", md("method", "pong"), "inverted"},
		{"missing key never matches, even inverted", md(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := tbl.Match(c.md)
			got := ""
			if r != nil {
				got = r.Name
			}
			if got != c.want {
				t.Errorf("matched %q, want %q", got, c.want)
			}
		})
	}
	if m := tbl.Routes[0].RequestMutation; len(m) != 1 || m[0] != (codec.KV{Key: "k", Value: "v"}) {
		t.Errorf("request mutation: %v", m)
	}
}

func TestWeightedSplit(t *testing.T) {
	r := &Route{Weighted: []WeightedCluster{{"e", 1}, {"f", 3}}}
	if _, err := NewTable("split", []*Route{r}); err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for range 8000 {
		n[r.PickCluster()]++
	}
	// 1:3 split; with 8000 draws the share of e is 0.25 ± 0.03 with
	// overwhelming probability.
	if share := float64(n["e"]) / 8000; share < 0.22 || share > 0.28 {
		t.Errorf("share of e = %.3f, want about 0.25 (%v)", share, n)
	}
}

func TestCompileErrors(t *testing.T) {
	for name, y := range map[string]string{
		"bad regex":         `routes: [ { match: { metadata: [ { name: m, safe_regex_match: { regex: "(" } } ] }, route: { cluster: a } } ]`,
		"zero weights":      `routes: [ { route: { weighted_clusters: { clusters: [ { name: a, weight: 0 } ] } } } ]`,
		"matcher sans name": `routes: [ { match: { metadata: [ { exact_match: x } ] }, route: { cluster: a } } ]`,
	} {
		t.Run(name, func(t *testing.T) {
			rc, err := api.ParseRouteConfiguration([]byte(y))
			if err == nil {
				_, _, err = Compile(rc)
			}
			if err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	rc, _ := api.ParseRouteConfiguration([]byte(routesYAML))
	tbl, _, _ := Compile(rc)
	m := md("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayHello", "foo", "bar")
	b.ReportAllocs()
	for b.Loop() {
		if tbl.Match(m) == nil {
			b.Fatal("no match")
		}
	}
}
