package rbac

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/filter/filtertest"
)

const svc = "org.apache.dubbo.samples.basic.api.DemoService"

func build(t testing.TB, h *filtertest.Harness, js string) filter.Filter {
	t.Helper()
	var raw json.RawMessage
	if js != "" {
		raw = json.RawMessage(js)
	}
	f, err := New(raw, h.Env)
	if err != nil {
		t.Fatalf("New(%s): %v", js, err)
	}
	return f
}

// call sends one request with metadata kv from downstream; principal, when
// not empty, is set in PeerPrincipal by a filter before RBAC.
func call(h *filtertest.Harness, f filter.Filter, downstream, principal string, kv ...string) *filtertest.Call {
	fs := []filter.Named{{Name: "rbac", Filter: f}}
	if principal != "" {
		set := filter.Func(func(x *filter.Exchange) filter.Status {
			PeerPrincipal.Set(x, principal)
			return filter.Continue
		})
		fs = append([]filter.Named{{Name: "identity", Filter: set}}, fs...)
	}
	return h.Send(filter.NewChain(fs, nil), filtertest.Request(kv...), downstream)
}

// expect checks that c was allowed (want) or denied with the unauthorized
// error.
func expect(t *testing.T, c *filtertest.Call, want bool, what string) {
	t.Helper()
	if c.Allowed() == want {
		if !want && (c.Reply() == nil || c.Reply().Type != codec.ErrUnauthorized || c.Reply().Message != DeniedMessage) {
			t.Errorf("%s: denied with %+v, want ErrUnauthorized %q", what, c.Reply(), DeniedMessage)
		}
		return
	}
	if want {
		t.Errorf("%s: denied (%v), want allowed", what, c.Reply())
	} else {
		t.Errorf("%s: allowed, want denied", what)
	}
}

func stats(h *filtertest.Harness, prefix string) [6]int64 {
	var out [6]int64
	for i, n := range []string{"allowed", "denied", "shadow_allowed", "shadow_denied", "logged", "not_logged"} {
		out[i] = h.Stats.Value(prefix + "rbac." + n)
	}
	return out
}

// methodPolicy is an RBAC whose one policy matches method m of svc from
// anyone.
func methodPolicy(action, m string) string {
	return `{"stat_prefix":"p.","rules":{"action":"` + action + `","policies":{"m":{
		"permissions":[{"and_rules":{"rules":[
			{"header":{"name":"interface","string_match":{"exact":"` + svc + `"}}},
			{"header":{"name":"method","exact_match":"` + m + `"}}]}}],
		"principals":[{"any":true}]}}}}`
}

func TestNoRulesAllowsEverything(t *testing.T) {
	for _, js := range []string{"", `{}`, `{"stat_prefix":"p."}`} {
		h := filtertest.New(t)
		f := build(t, h, js)
		expect(t, call(h, f, "10.0.0.1:1", "", "method", "anything"), true, js)
		p := "p."
		if js != `{"stat_prefix":"p."}` {
			p = "test." // the listener's prefix
		}
		if got := stats(h, p); got != [6]int64{1, 0, 0, 0, 0, 0} {
			t.Errorf("%q: stats %v", js, got)
		}
	}
}

func TestAllow(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, methodPolicy("ALLOW", "sayHello"))
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", svc, "method", "sayHello"), true, "sayHello")
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", svc, "method", "sayGoodbye"), false, "sayGoodbye")
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", "other.Service", "method", "sayHello"), false, "other interface")
	expect(t, call(h, f, "10.0.0.1:1", ""), false, "no metadata")
	if got := stats(h, "p."); got != [6]int64{1, 3, 0, 0, 0, 0} {
		t.Errorf("stats %v, want 1 allowed 3 denied", got)
	}
}

func TestDeny(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, methodPolicy("DENY", "sayHello"))
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", svc, "method", "sayHello"), false, "sayHello")
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", svc, "method", "sayGoodbye"), true, "sayGoodbye")
	if got := stats(h, "p."); got != [6]int64{1, 1, 0, 0, 0, 0} {
		t.Errorf("stats %v", got)
	}
}

func TestLog(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, methodPolicy("LOG", "sayHello"))
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", svc, "method", "sayHello"), true, "sayHello")
	expect(t, call(h, f, "10.0.0.1:1", "", "interface", svc, "method", "sayGoodbye"), true, "sayGoodbye")
	if got := stats(h, "p."); got != [6]int64{2, 0, 0, 0, 1, 1} {
		t.Errorf("stats %v, want 2 allowed, 1 logged, 1 not logged", got)
	}
}

// Rules present with no policy: ALLOW denies everything, DENY allows
// everything (Envoy's "if present and empty, DENY" for the default action).
func TestEmptyPolicies(t *testing.T) {
	h := filtertest.New(t)
	expect(t, call(h, build(t, h, `{"rules":{}}`), "10.0.0.1:1", "", "method", "m"), false, "ALLOW, no policy")
	expect(t, call(h, build(t, h, `{"rules":{"action":"DENY"}}`), "10.0.0.1:1", "", "method", "m"), true, "DENY, no policy")
	expect(t, call(h, build(t, h, `{"rules":{"action":"LOG"}}`), "10.0.0.1:1", "", "method", "m"), true, "LOG, no policy")
}

func TestNesting(t *testing.T) {
	// (method = a OR method = b) AND NOT (version = 2 AND attachment env = prod)
	h := filtertest.New(t)
	f := build(t, h, `{"rules":{"policies":{"p":{
		"permissions":[{"and_rules":{"rules":[
			{"or_rules":{"rules":[{"header":{"name":"method","exact_match":"a"}},{"header":{"name":"method","exact_match":"b"}}]}},
			{"not_rule":{"and_rules":{"rules":[{"header":{"name":"version","exact_match":"2"}},{"header":{"name":"env","exact_match":"prod"}}]}}}
		]}}],
		"principals":[{"and_ids":{"ids":[{"any":true},{"not_id":{"not_id":{"any":true}}}]}}]}}}}`)
	for _, tc := range []struct {
		kv   []string
		want bool
	}{
		{[]string{"method", "a"}, true},
		{[]string{"method", "b", "version", "2"}, true},
		{[]string{"method", "b", "env", "prod"}, true},
		{[]string{"method", "b", "version", "2", "env", "prod"}, false},
		{[]string{"method", "c"}, false},
		{nil, false},
	} {
		expect(t, call(h, f, "10.0.0.1:1", "", tc.kv...), tc.want, strings.Join(tc.kv, " "))
	}
	// Principals: or_ids, and a not_id that excludes one method (header
	// principals match metadata too).
	f = build(t, h, `{"rules":{"policies":{"p":{"permissions":[{"any":true}],
		"principals":[{"or_ids":{"ids":[
			{"header":{"name":"app","prefix_match":"front"}},
			{"not_id":{"header":{"name":"method","exact_match":"secret"}}}]}}]}}}}`)
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "open"), true, "not secret")
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "secret"), false, "secret")
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "secret", "app", "frontend"), true, "secret from frontend")
}

// Permissions match metadata with every kind of header matcher.
func TestHeaderMatchers(t *testing.T) {
	h := filtertest.New(t)
	perm := func(hm string) filter.Filter {
		return build(t, h, `{"rules":{"policies":{"p":{"permissions":[{"header":`+hm+`}],"principals":[{"any":true}]}}}}`)
	}
	for _, tc := range []struct {
		hm   string
		kv   []string
		want bool
	}{
		{`{"name":"method","exact_match":"sayHello"}`, []string{"method", "sayHello"}, true},
		{`{"name":"method","exact_match":"sayHello"}`, []string{"method", "sayhello"}, false},
		{`{"name":"METHOD","string_match":{"exact":"SAYHELLO","ignore_case":true}}`, []string{"method", "sayHello"}, true},
		{`{"name":"interface","prefix_match":"org.apache."}`, []string{"interface", svc}, true},
		{`{"name":"interface","suffix_match":"DemoService"}`, []string{"interface", svc}, true},
		{`{"name":"interface","contains_match":"samples"}`, []string{"interface", svc}, true},
		{`{"name":"interface","safe_regex_match":{"regex":"org\\.apache\\..*Service"}}`, []string{"interface", svc}, true},
		{`{"name":"interface","safe_regex_match":{"regex":"apache"}}`, []string{"interface", svc}, false}, // full match
		{`{"name":"version","string_match":{"prefix":"1."}}`, []string{"version", "1.2.0"}, true},
		{`{"name":"version","string_match":{"prefix":"1."}}`, []string{"version", "2.0.0"}, false},
		{`{"name":"version","range_match":{"start":1,"end":3}}`, []string{"version", "2"}, true},
		{`{"name":"tenant","exact_match":"a"}`, []string{"method", "m", "tenant", "a"}, true}, // an attachment
		{`{"name":"tenant","present_match":true}`, []string{"tenant", ""}, true},
		{`{"name":"tenant","present_match":false}`, []string{"method", "m"}, true},
		{`{"name":"tenant"}`, []string{"method", "m"}, false},
		{`{"name":"tenant","exact_match":"a","invert_match":true}`, []string{"tenant", "b"}, true},
		{`{"name":"tenant","exact_match":"a","invert_match":true}`, []string{"method", "m"}, false}, // missing never matches
		{`{"name":"tenant","exact_match":"","treat_missing_header_as_empty":true}`, []string{"method", "m"}, true},
	} {
		expect(t, call(h, perm(tc.hm), "10.0.0.1:1", "", tc.kv...), tc.want, tc.hm+" on "+strings.Join(tc.kv, " "))
	}
}

func TestCIDR(t *testing.T) {
	h := filtertest.New(t)
	prin := func(p string) filter.Filter {
		return build(t, h, `{"rules":{"policies":{"p":{"permissions":[{"any":true}],"principals":[`+p+`]}}}}`)
	}
	for _, tc := range []struct {
		p, downstream string
		want          bool
	}{
		{`{"direct_remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}`, "10.1.2.3:4567", true},
		{`{"direct_remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}`, "11.1.2.3:4567", false},
		{`{"direct_remote_ip":{"address_prefix":"10.9.9.9","prefix_len":8}}`, "10.1.2.3:4567", true}, // masked
		{`{"direct_remote_ip":{"address_prefix":"127.0.0.1","prefix_len":32}}`, "127.0.0.1:80", true},
		{`{"direct_remote_ip":{"address_prefix":"127.0.0.1","prefix_len":32}}`, "127.0.0.2:80", false},
		{`{"direct_remote_ip":{"address_prefix":"127.0.0.1"}}`, "192.168.1.1:80", true}, // prefix_len 0: the whole family
		{`{"direct_remote_ip":{"address_prefix":"127.0.0.1"}}`, "[::1]:80", false},
		{`{"direct_remote_ip":{"address_prefix":"127.0.0.0","prefix_len":8}}`, "[::ffff:127.0.0.1]:80", true}, // mapped
		{`{"direct_remote_ip":{"address_prefix":"127.0.0.1","prefix_len":32}}`, "127.0.0.1", true},            // no port
		{`{"remote_ip":{"address_prefix":"2001:db8::","prefix_len":32}}`, "[2001:db8:1::7]:9000", true},
		{`{"remote_ip":{"address_prefix":"2001:db8::","prefix_len":32}}`, "[2001:db9::7]:9000", false},
		{`{"remote_ip":{"address_prefix":"::1","prefix_len":128}}`, "[::1]:9000", true},
		{`{"remote_ip":{"address_prefix":"::1","prefix_len":128}}`, "127.0.0.1:9000", false},
		{`{"remote_ip":{"address_prefix":"fe80::","prefix_len":10}}`, "[fe80::1%eth0]:9000", true}, // zone ignored
		{`{"remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}`, "", false},                  // unknown address
		{`{"remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}`, "@unix-sock", false},        // not an IP
		{`{"not_id":{"remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}}`, "@unix-sock", true},
		{`{"not_id":{"direct_remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}}}`, "10.0.0.1:1", false},
	} {
		expect(t, call(h, prin(tc.p), tc.downstream, "", "method", "m"), tc.want, tc.p+" from "+tc.downstream)
	}
}

func TestPrincipalName(t *testing.T) {
	h := filtertest.New(t)
	const front = "spiffe://cluster.local/ns/default/sa/frontend"
	prin := func(p string) filter.Filter {
		return build(t, h, `{"rules":{"policies":{"p":{"permissions":[{"any":true}],"principals":[`+p+`]}}}}`)
	}
	for _, tc := range []struct {
		p, principal string
		want         bool
	}{
		{`{"authenticated":{"principal_name":{"exact":"` + front + `"}}}`, front, true},
		{`{"authenticated":{"principal_name":{"exact":"` + front + `"}}}`, "spiffe://cluster.local/ns/default/sa/other", false},
		{`{"authenticated":{"principal_name":{"exact":"` + front + `"}}}`, "", false}, // unknown identity
		{`{"authenticated":{"principal_name":{"prefix":"spiffe://cluster.local/ns/default/"}}}`, front, true},
		{`{"authenticated":{"principal_name":{"suffix":"/SA/FRONTEND","ignore_case":true}}}`, front, true},
		{`{"authenticated":{"principal_name":{"contains":"/NS/DEFAULT/","ignore_case":true}}}`, front, true},
		{`{"authenticated":{"principal_name":{"safe_regex":{"regex":".*/ns/(default|prod)/.*"}}}}`, front, true},
		{`{"authenticated":{}}`, front, true}, // any authenticated client
		{`{"authenticated":{}}`, "", false},
		{`{"not_id":{"authenticated":{}}}`, "", true}, // unknown identity is "not authenticated"
		{`{"not_id":{"authenticated":{"principal_name":{"exact":"` + front + `"}}}}`, "", true},
		{`{"not_id":{"authenticated":{"principal_name":{"exact":"` + front + `"}}}}`, front, false},
	} {
		expect(t, call(h, prin(tc.p), "10.0.0.1:1", tc.principal, "method", "m"), tc.want, tc.p+" as "+tc.principal)
	}
}

func TestShadowRulesOnlyCount(t *testing.T) {
	h := filtertest.New(t)
	// The shadow rules would deny sayHello; nothing is enforced.
	f := build(t, h, `{"stat_prefix":"s","shadow_rules":{"action":"DENY","policies":{"no-hello":{
		"permissions":[{"header":{"name":"method","exact_match":"sayHello"}}],"principals":[{"any":true}]}}}}`)
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "sayHello"), true, "sayHello")
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "sayGoodbye"), true, "sayGoodbye")
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "sayHello"), true, "sayHello")
	if got := stats(h, "s."); got != [6]int64{3, 0, 1, 2, 0, 0} {
		t.Errorf("stats %v, want 3 allowed, 1 shadow_allowed, 2 shadow_denied", got)
	}
	// With enforced rules beside them: each counts on its own.
	f = build(t, h, `{"stat_prefix":"both.","rules":{"action":"DENY","policies":{"x":{"permissions":[{"header":{"name":"method","exact_match":"sayGoodbye"}}],"principals":[{"any":true}]}}},
		"shadow_rules":{"policies":{"x":{"permissions":[{"header":{"name":"method","exact_match":"sayGoodbye"}}],"principals":[{"any":true}]}}}}`)
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "sayHello"), true, "sayHello")
	expect(t, call(h, f, "10.0.0.1:1", "", "method", "sayGoodbye"), false, "sayGoodbye")
	if got := stats(h, "both."); got != [6]int64{1, 1, 1, 1, 0, 0} {
		t.Errorf("stats %v", got)
	}
}

func TestStatPrefix(t *testing.T) {
	for _, tc := range []struct{ config, listener, want string }{
		{"dubbo.", "l", "dubbo.rbac."},
		{"dubbo", "l", "dubbo.rbac."},
		{"", "outbound|20880||svc", "outbound|20880||svc.rbac."},
		{"", "", "rbac."},
	} {
		if got := StatPrefix(tc.config, tc.listener); got != tc.want {
			t.Errorf("StatPrefix(%q, %q) = %q, want %q", tc.config, tc.listener, got, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	pol := func(perm, prin string) string {
		return `{"rules":{"policies":{"p":{"permissions":[` + perm + `],"principals":[` + prin + `]}}}}`
	}
	anyP := `{"any":true}`
	for _, tc := range []struct{ js, want string }{
		{`{"stat_prefx":"x"}`, "stat_prefx"},
		{`{"rules":{"policies":{"p":{"permissions":[{"any":true}],"principals":[{"any":true}],"condition":{}}}}}`, "condition"},
		{pol(`{"metadata":{}}`, anyP), "metadata"},    // Envoy's MetadataMatcher: not run
		{pol(`{"url_path":{}}`, anyP), "url_path"},    // HTTP only
		{pol(anyP, `{"source_ip":{}}`), "source_ip"},  // deprecated in Envoy
		{`{"rules":{"action":"ALLOWED"}}`, "ALLOWED"}, // unknown enum
		{`{"enforcement_type":"CONTINUOUS"}`, "enforcement_type"},
		{`{"rules":{"policies":{"p":{"principals":[{"any":true}]}}}}`, `rules.policies["p"].permissions: at least one`},
		{`{"rules":{"policies":{"p":{"permissions":[{"any":true}]}}}}`, `rules.policies["p"].principals: at least one`},
		{`{"shadow_rules":{"policies":{"p":{"permissions":[{"any":true}]}}}}`, `shadow_rules.policies["p"].principals`},
		{pol(`{}`, anyP), `rules.policies["p"].permissions[0]: a rule is required`},
		{pol(anyP, `{}`), `rules.policies["p"].principals[0]: an identifier is required`},
		{pol(`{"any":false}`, anyP), `permissions[0].any: must be true`},
		{pol(anyP, `{"any":false}`), `principals[0].any: must be true`},
		{pol(`{"and_rules":{}}`, anyP), `permissions[0].and_rules.rules: at least one`},
		{pol(anyP, `{"or_ids":{"ids":[]}}`), `principals[0].or_ids.ids: at least one`},
		{pol(`{"header":{"exact_match":"x"}}`, anyP), `permissions[0].header.name is required`},
		{pol(`{"or_rules":{"rules":[{"any":true},{"header":{"name":"m","safe_regex_match":{"regex":"a(b"}}}]}}`, anyP),
			`permissions[0].or_rules.rules[1].header.safe_regex "a(b"`},
		{pol(anyP, `{"authenticated":{"principal_name":{"safe_regex":{"regex":"("}}}}`), `principals[0].authenticated.principal_name.safe_regex`},
		{pol(anyP, `{"authenticated":{"principal_name":{}}}`), `principals[0].authenticated.principal_name: a pattern is required`},
		{pol(anyP, `{"authenticated":{"principal_name":{"prefix":""}}}`), `principal_name: the pattern must not be empty`},
		{pol(anyP, `{"direct_remote_ip":{"prefix_len":8}}`), `principals[0].direct_remote_ip.address_prefix: value is required`},
		{pol(anyP, `{"remote_ip":{"address_prefix":"10.0.0.0/8"}}`), `principals[0].remote_ip.address_prefix: "10.0.0.0/8" is not`},
		{pol(anyP, `{"remote_ip":{"address_prefix":"localhost"}}`), `remote_ip.address_prefix: "localhost" is not`},
		{pol(anyP, `{"remote_ip":{"address_prefix":"10.0.0.0","prefix_len":33}}`), `remote_ip.prefix_len: 33 is longer than the 32 bits`},
		{pol(anyP, `{"remote_ip":{"address_prefix":"::","prefix_len":129}}`), `remote_ip.prefix_len: 129 is longer than the 128 bits`},
		{pol(anyP, `{"not_id":{"not_id":{"remote_ip":{"address_prefix":"x"}}}}`), `principals[0].not_id.not_id.remote_ip.address_prefix`},
		{pol(`{"not_rule":{"header":{}}}`, anyP), `permissions[0].not_rule.header.name is required`},
	} {
		_, err := New(json.RawMessage(tc.js), filtertest.New(t).Env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s): error %v, want one containing %q", tc.js, err, tc.want)
		}
	}
}

func TestRegistered(t *testing.T) {
	for _, n := range []string{Name, Alias} {
		if d, ok := filter.Lookup(n); !ok || d.Name != Name {
			t.Errorf("Lookup(%q) = %v, %v", n, d, ok)
		}
	}
}

// The README's example is a valid meta_protocol_filters entry, with the
// meaning the README gives it.
func TestREADMEExample(t *testing.T) {
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- example -->\n```yaml\n(.*?)```").FindSubmatch(md)
	if m == nil {
		t.Fatal("README.md: no ```yaml block after <!-- example -->")
	}
	doc := "'@type': type.googleapis.com/aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy\n" +
		"application_protocol: dubbo\ncodec:\n  name: aeraki.meta_protocol.codec.dubbo\nstatPrefix: dubbo\n" +
		"routeConfig:\n  routes:\n  - name: default\n    route:\n      cluster: c\n" +
		"metaProtocolFilters:\n" + string(m[1]) + "- name: aeraki.meta_protocol.filters.router\n"
	p, err := api.ParseProxy([]byte(doc))
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	fc := p.GetMetaProtocolFilters()[0]
	if _, ok := filter.Lookup(fc.GetName()); !ok {
		t.Fatalf("README example names filter %q, not registered", fc.GetName())
	}
	js, err := api.ConfigJSON(fc.GetConfig())
	if err != nil {
		t.Fatal(err)
	}
	h := filtertest.New(t)
	f := build(t, h, string(js))
	const (
		iface = "org.apache.dubbo.samples.basic.api.DemoService"
		front = "spiffe://cluster.local/ns/dubbo/sa/frontend"
	)
	expect(t, call(h, f, "10.1.2.3:4567", front, "interface", iface, "method", "sayHello"), true, "frontend sayHello")
	expect(t, call(h, f, "10.1.2.3:4567", front, "interface", iface, "method", "deleteAll"), false, "frontend deleteAll")
	expect(t, call(h, f, "10.1.2.3:4567", "", "interface", iface, "method", "sayHello"), false, "unknown identity")
	expect(t, call(h, f, "192.168.0.9:4567", front, "interface", iface, "method", "sayHello"), false, "outside the mesh network")
	if h.Stats.Value("dubbo.rbac.denied") != 3 || h.Stats.Value("dubbo.rbac.allowed") != 1 {
		t.Errorf("stats: allowed %d denied %d", h.Stats.Value("dubbo.rbac.allowed"), h.Stats.Value("dubbo.rbac.denied"))
	}
}

// benchConfig is a realistic configuration: five ALLOW policies on
// interfaces, methods, versions, source ranges and identities, the request
// matching the last one (in name order).
const benchConfig = `{"stat_prefix":"bench.","rules":{"action":"ALLOW","policies":{
 "a-admin":{"permissions":[{"any":true}],"principals":[{"authenticated":{"principal_name":{"exact":"spiffe://cluster.local/ns/ops/sa/admin"}}}]},
 "b-readers":{"permissions":[{"and_rules":{"rules":[
    {"header":{"name":"interface","string_match":{"exact":"org.apache.dubbo.samples.UserService"}}},
    {"header":{"name":"method","string_match":{"prefix":"get"}}}]}}],
   "principals":[{"authenticated":{"principal_name":{"prefix":"spiffe://cluster.local/ns/web/"}}}]},
 "c-batch":{"permissions":[{"header":{"name":"method","safe_regex_match":{"regex":"batch(Import|Export)"}}}],
   "principals":[{"direct_remote_ip":{"address_prefix":"10.20.0.0","prefix_len":16}}]},
 "d-not-legacy":{"permissions":[{"and_rules":{"rules":[
    {"header":{"name":"interface","exact_match":"org.apache.dubbo.samples.LegacyService"}},
    {"not_rule":{"header":{"name":"version","exact_match":"1.0.0"}}}]}}],
   "principals":[{"any":true}]},
 "e-demo":{"permissions":[{"and_rules":{"rules":[
    {"header":{"name":"interface","exact_match":"org.apache.dubbo.samples.basic.api.DemoService"}},
    {"or_rules":{"rules":[{"header":{"name":"method","exact_match":"sayHello"}},{"header":{"name":"method","exact_match":"sayGoodbye"}}]}},
    {"header":{"name":"version","string_match":{"prefix":"1."}}}]}}],
   "principals":[{"and_ids":{"ids":[
    {"remote_ip":{"address_prefix":"10.0.0.0","prefix_len":8}},
    {"not_id":{"header":{"name":"tenant","exact_match":"blocked"}}},
    {"authenticated":{"principal_name":{"suffix":"/sa/frontend"}}}]}}]}
}}}`

func BenchmarkRBAC(b *testing.B) {
	h := filtertest.New(b)
	f := build(b, h, benchConfig)
	var x filter.Exchange
	x.Request = filtertest.Request("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayGoodbye",
		"version", "1.2.0", "tenant", "acme", "path", "org.apache.dubbo.samples.basic.api.DemoService")
	x.Downstream = "10.1.2.3:45678"
	PeerPrincipal.Set(&x, "spiffe://cluster.local/ns/default/sa/frontend")
	b.Run("allowed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if f.OnRequest(&x) != filter.Continue {
				b.Fatal("denied")
			}
		}
	})
	var d filter.Exchange
	d.Request = filtertest.Request("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "deleteAll", "version", "1.2.0")
	d.Downstream = "192.168.1.1:45678"
	b.Run("denied", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.LocalReply = nil
			if f.OnRequest(&d) != filter.Stop {
				b.Fatal("allowed")
			}
		}
	})
}

// The README's translation of a DubboAuthorizationPolicy loads and means
// what the policy says.
func TestREADMEAerakiMapping(t *testing.T) {
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- aeraki -->\n```yaml\n(.*?)```").FindSubmatch(md)
	if m == nil {
		t.Fatal("README.md: no ```yaml block after <!-- aeraki -->")
	}
	h := filtertest.New(t)
	f := build(t, h, string(m[1]))
	const (
		demo     = "org.apache.dubbo.samples.basic.api.DemoService"
		consumer = "spiffe://cluster.local/ns/meta-dubbo/sa/dubbo-consumer"
		opsBob   = "spiffe://cluster.local/ns/ops/sa/bob"
		intern   = "spiffe://cluster.local/ns/ops/sa/intern"
	)
	for _, tc := range []struct {
		principal, iface, method string
		want                     bool
	}{
		{consumer, demo, "sayHello", true},
		{consumer, demo, "deleteAll", false},
		{consumer, demo, "reset", false},
		{consumer, "other.Service", "sayHello", false},
		{opsBob, demo, "sayHello", true},
		{intern, demo, "sayHello", false},
		{"spiffe://cluster.local/ns/web/sa/x", demo, "sayHello", false},
		{"", demo, "sayHello", false},
	} {
		expect(t, call(h, f, "10.0.0.1:1", tc.principal, "interface", tc.iface, "method", tc.method), tc.want,
			tc.principal+" "+tc.iface+"."+tc.method)
	}
}

// An allowed request costs no allocation (a denial costs the reply's).
func TestAllowedDoesNotAllocate(t *testing.T) {
	h := filtertest.New(t)
	f := build(t, h, benchConfig)
	var x filter.Exchange
	x.Request = filtertest.Request("interface", "org.apache.dubbo.samples.basic.api.DemoService", "method", "sayHello", "version", "1.0.1")
	x.Downstream = "10.1.2.3:45678"
	PeerPrincipal.Set(&x, "spiffe://cluster.local/ns/default/sa/frontend")
	if n := testing.AllocsPerRun(100, func() {
		if f.OnRequest(&x) != filter.Continue {
			t.Fatal("denied")
		}
	}); n != 0 {
		t.Errorf("%v allocations per allowed request, want 0", n)
	}
}
