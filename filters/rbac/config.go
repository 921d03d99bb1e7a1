package rbac

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	rbacv1 "github.com/metaproxy/metaproxy/api/filters/rbac/v1"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/router"
)

// parse decodes a metaproxy.filters.rbac.v1.RBAC (canonical proto JSON, as
// the host hands filter configs over; unknown fields are errors). An
// absent config is an empty one: no rules, every request allowed.
func parse(js json.RawMessage) (*rbacv1.RBAC, error) {
	c := &rbacv1.RBAC{}
	if len(js) == 0 {
		return c, nil
	}
	if err := api.Unmarshal(js, c); err != nil {
		return nil, err
	}
	return c, nil
}

// engine is a compiled envoy RBAC: its action and its policies in
// lexicographic order of their names.
type engine struct {
	action   envoy.RBAC_Action
	policies []policy
	needIP   bool // some principal reads the client's IP
}

// policy matches when some permission and some principal match.
type policy struct {
	name        string
	permissions []node // OR
	principals  []node // OR
}

// kind is what a node tests.
type kind uint8

const (
	kAny    kind = iota // always true
	kAnd                // every child
	kOr                 // some child
	kNot                // not the only child
	kHeader             // a metadata matcher
	kIP                 // the client's IP in a prefix
	kAuth               // the peer's principal (any known one when str is nil)
)

// node is one compiled permission or principal rule. The tree is built
// once per configuration and only read afterwards.
type node struct {
	kind   kind
	kids   []node
	header router.Matcher
	prefix netip.Prefix
	str    *stringMatcher
}

// input is what one request is matched on.
type input struct {
	md           *codec.Metadata
	ip           netip.Addr // invalid when the client's address is unknown
	principal    string
	hasPrincipal bool
}

func (n *node) match(in *input) bool {
	switch n.kind {
	case kAny:
		return true
	case kAnd:
		for i := range n.kids {
			if !n.kids[i].match(in) {
				return false
			}
		}
		return true
	case kOr:
		for i := range n.kids {
			if n.kids[i].match(in) {
				return true
			}
		}
		return false
	case kNot:
		return !n.kids[0].match(in)
	case kHeader:
		return n.header.Match(in.md)
	case kIP:
		return in.ip.IsValid() && n.prefix.Contains(in.ip)
	case kAuth:
		return in.hasPrincipal && (n.str == nil || n.str.match(in.principal))
	}
	return false
}

// match returns the name of the first policy (in name order) that matches
// in, and whether one does.
func (e *engine) match(in *input) (string, bool) {
	for i := range e.policies {
		p := &e.policies[i]
		if anyMatch(p.permissions, in) && anyMatch(p.principals, in) {
			return p.name, true
		}
	}
	return "", false
}

// allowed applies the action: ALLOW lets a request through iff a policy
// matches, DENY iff none does, LOG always.
func (e *engine) allowed(in *input) (ok bool, policy string, matched bool) {
	policy, matched = e.match(in)
	switch e.action {
	case envoy.RBAC_DENY:
		return !matched, policy, matched
	case envoy.RBAC_LOG:
		return true, policy, matched
	}
	return matched, policy, matched
}

func anyMatch(ns []node, in *input) bool {
	for i := range ns {
		if ns[i].match(in) {
			return true
		}
	}
	return false
}

// compile builds the engine of r (nil: no engine). where is the field r
// came from, for errors ("rules").
func compile(r *envoy.RBAC, where string) (*engine, error) {
	if r == nil {
		return nil, nil
	}
	e := &engine{action: r.GetAction()}
	switch e.action {
	case envoy.RBAC_ALLOW, envoy.RBAC_DENY, envoy.RBAC_LOG:
	default:
		return nil, fmt.Errorf("%s.action: unknown action %d", where, e.action)
	}
	names := make([]string, 0, len(r.GetPolicies()))
	for name := range r.GetPolicies() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pw := fmt.Sprintf("%s.policies[%q]", where, name)
		p := r.GetPolicies()[name]
		if len(p.GetPermissions()) == 0 {
			return nil, fmt.Errorf("%s.permissions: at least one is required (use {any: true} to match every request)", pw)
		}
		if len(p.GetPrincipals()) == 0 {
			return nil, fmt.Errorf("%s.principals: at least one is required (use {any: true} to match every client)", pw)
		}
		cp := policy{name: name}
		for i, perm := range p.GetPermissions() {
			n, err := e.permission(perm, fmt.Sprintf("%s.permissions[%d]", pw, i))
			if err != nil {
				return nil, err
			}
			cp.permissions = append(cp.permissions, n)
		}
		for i, prin := range p.GetPrincipals() {
			n, err := e.principal(prin, fmt.Sprintf("%s.principals[%d]", pw, i))
			if err != nil {
				return nil, err
			}
			cp.principals = append(cp.principals, n)
		}
		e.policies = append(e.policies, cp)
	}
	return e, nil
}

func (e *engine) permission(p *envoy.Permission, where string) (node, error) {
	switch r := p.GetRule().(type) {
	case *envoy.Permission_AndRules:
		return e.permissionSet(kAnd, r.AndRules, where+".and_rules")
	case *envoy.Permission_OrRules:
		return e.permissionSet(kOr, r.OrRules, where+".or_rules")
	case *envoy.Permission_Any:
		if !r.Any {
			return node{}, fmt.Errorf("%s.any: must be true", where)
		}
		return node{kind: kAny}, nil
	case *envoy.Permission_Header:
		return headerNode(r.Header, where+".header")
	case *envoy.Permission_NotRule:
		if r.NotRule == nil {
			return node{}, fmt.Errorf("%s.not_rule: value is required", where)
		}
		k, err := e.permission(r.NotRule, where+".not_rule")
		if err != nil {
			return node{}, err
		}
		return node{kind: kNot, kids: []node{k}}, nil
	case nil:
		return node{}, fmt.Errorf("%s: a rule is required (and_rules, or_rules, any, header or not_rule)", where)
	}
	return node{}, fmt.Errorf("%s: unsupported rule %T", where, p.GetRule())
}

func (e *engine) permissionSet(k kind, s *envoy.Permission_Set, where string) (node, error) {
	if len(s.GetRules()) == 0 {
		return node{}, fmt.Errorf("%s.rules: at least one is required", where)
	}
	n := node{kind: k}
	for i, r := range s.GetRules() {
		c, err := e.permission(r, fmt.Sprintf("%s.rules[%d]", where, i))
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, c)
	}
	return n, nil
}

func (e *engine) principal(p *envoy.Principal, where string) (node, error) {
	switch id := p.GetIdentifier().(type) {
	case *envoy.Principal_AndIds:
		return e.principalSet(kAnd, id.AndIds, where+".and_ids")
	case *envoy.Principal_OrIds:
		return e.principalSet(kOr, id.OrIds, where+".or_ids")
	case *envoy.Principal_Any:
		if !id.Any {
			return node{}, fmt.Errorf("%s.any: must be true", where)
		}
		return node{kind: kAny}, nil
	case *envoy.Principal_Authenticated_:
		n := node{kind: kAuth}
		if sm := id.Authenticated.GetPrincipalName(); sm != nil {
			m, err := compileString(sm, where+".authenticated.principal_name")
			if err != nil {
				return node{}, err
			}
			n.str = m
		}
		return n, nil
	case *envoy.Principal_DirectRemoteIp:
		return e.cidrNode(id.DirectRemoteIp, where+".direct_remote_ip")
	case *envoy.Principal_RemoteIp:
		return e.cidrNode(id.RemoteIp, where+".remote_ip")
	case *envoy.Principal_Header:
		return headerNode(id.Header, where+".header")
	case *envoy.Principal_NotId:
		if id.NotId == nil {
			return node{}, fmt.Errorf("%s.not_id: value is required", where)
		}
		k, err := e.principal(id.NotId, where+".not_id")
		if err != nil {
			return node{}, err
		}
		return node{kind: kNot, kids: []node{k}}, nil
	case nil:
		return node{}, fmt.Errorf("%s: an identifier is required (and_ids, or_ids, any, authenticated, direct_remote_ip, remote_ip, header or not_id)", where)
	}
	return node{}, fmt.Errorf("%s: unsupported identifier %T", where, p.GetIdentifier())
}

func (e *engine) principalSet(k kind, s *envoy.Principal_Set, where string) (node, error) {
	if len(s.GetIds()) == 0 {
		return node{}, fmt.Errorf("%s.ids: at least one is required", where)
	}
	n := node{kind: k}
	for i, r := range s.GetIds() {
		c, err := e.principal(r, fmt.Sprintf("%s.ids[%d]", where, i))
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, c)
	}
	return n, nil
}

func headerNode(hm *envoy.HeaderMatcher, where string) (node, error) {
	m, err := router.CompileMatcher(hm)
	if err != nil {
		return node{}, fmt.Errorf("%s.%w", where, err)
	}
	return node{kind: kHeader, header: m}, nil
}

// cidrNode compiles a CidrRange as Envoy does: the address is masked to
// prefix_len bits (10.1.2.3/8 is 10.0.0.0/8), an unset prefix_len is 0.
func (e *engine) cidrNode(c *envoy.CidrRange, where string) (node, error) {
	p, err := parseCIDR(c)
	if err != nil {
		return node{}, fmt.Errorf("%s.%w", where, err)
	}
	e.needIP = true
	return node{kind: kIP, prefix: p}, nil
}

func parseCIDR(c *envoy.CidrRange) (netip.Prefix, error) {
	if c.GetAddressPrefix() == "" {
		return netip.Prefix{}, fmt.Errorf("address_prefix: value is required")
	}
	a, err := netip.ParseAddr(c.GetAddressPrefix())
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address_prefix: %q is not an IPv4 or IPv6 address", c.GetAddressPrefix())
	}
	a = a.Unmap()
	n := c.GetPrefixLen().GetValue()
	if int(n) > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("prefix_len: %d is longer than the %d bits of %s", n, a.BitLen(), a)
	}
	return netip.PrefixFrom(a, int(n)).Masked(), nil
}

// stringMatcher is a compiled envoy StringMatcher.
type stringMatcher struct {
	kind       router.MatchKind // Exact, Prefix, Suffix, Contains or Regex
	value      string
	ignoreCase bool
	re         *regexp.Regexp
}

func compileString(sm *envoy.StringMatcher, where string) (*stringMatcher, error) {
	m := &stringMatcher{ignoreCase: sm.GetIgnoreCase()}
	switch p := sm.GetMatchPattern().(type) {
	case *envoy.StringMatcher_Exact:
		m.kind, m.value = router.Exact, p.Exact
	case *envoy.StringMatcher_Prefix:
		m.kind, m.value = router.Prefix, p.Prefix
	case *envoy.StringMatcher_Suffix:
		m.kind, m.value = router.Suffix, p.Suffix
	case *envoy.StringMatcher_Contains:
		m.kind, m.value = router.Contains, p.Contains
	case *envoy.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		if err != nil {
			return nil, fmt.Errorf("%s.safe_regex: %q: %v", where, p.SafeRegex.GetRegex(), err)
		}
		m.kind, m.re = router.Regex, re
	default:
		return nil, fmt.Errorf("%s: a pattern is required (exact, prefix, suffix, contains or safe_regex)", where)
	}
	if m.kind != router.Exact && m.kind != router.Regex && m.value == "" {
		return nil, fmt.Errorf("%s: the pattern must not be empty", where)
	}
	if m.ignoreCase && m.kind == router.Contains {
		m.value = strings.ToLower(m.value)
	}
	return m, nil
}

func (m *stringMatcher) match(v string) bool {
	switch m.kind {
	case router.Exact:
		if m.ignoreCase {
			return strings.EqualFold(v, m.value)
		}
		return v == m.value
	case router.Prefix:
		if m.ignoreCase {
			return len(v) >= len(m.value) && strings.EqualFold(v[:len(m.value)], m.value)
		}
		return strings.HasPrefix(v, m.value)
	case router.Suffix:
		if m.ignoreCase {
			return len(v) >= len(m.value) && strings.EqualFold(v[len(v)-len(m.value):], m.value)
		}
		return strings.HasSuffix(v, m.value)
	case router.Contains:
		if m.ignoreCase {
			return strings.Contains(strings.ToLower(v), m.value)
		}
		return strings.Contains(v, m.value)
	case router.Regex:
		return m.re.MatchString(v)
	}
	return false
}
