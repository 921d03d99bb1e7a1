// Package rbac is the RBAC filter (metaproxy.filters.rbac): role-based
// access control with Envoy's RBAC engine (envoy.config.rbac.v3) on the
// request's metadata (interface, method, version, attachments), the
// client's IP and its authenticated identity. A denied request is answered
// with the protocol's unauthorized error (Dubbo: a SERVER_ERROR response,
// Thrift: a TApplicationException UNKNOWN) and never reaches the router.
// Shadow rules are evaluated and counted, never enforced. See README.md.
package rbac

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// Name is the filter's name in meta_protocol_filters; Alias its short name.
const (
	Name  = "metaproxy.filters.rbac"
	Alias = "rbac"
)

// DeniedMessage is the message of the error reply to a denied request.
const DeniedMessage = "metaproxy: RBAC: access denied"

// PeerPrincipal is the authenticated identity of the client of an exchange
// (such as "spiffe://cluster.local/ns/default/sa/frontend"), set by the
// filter that learnt it (TLS, Istio metadata exchange) before RBAC runs.
// When it is not set, or set to "", the identity is unknown: no
// authenticated principal matches (and not_id of one does).
var PeerPrincipal = filter.NewSlot[string]("peer.principal")

func init() {
	filter.MustRegister(filter.Definition{Name: Name, Aliases: []string{Alias}, New: New})
}

// Filter is a configured RBAC filter.
type Filter struct {
	rules, shadow *engine // nil: not configured
	needIP        bool
	log           *slog.Logger

	allowed, denied             *filter.Stat
	shadowAllowed, shadowDenied *filter.Stat
	logged, notLogged           *filter.Stat
}

// New builds the filter of config (a metaproxy.filters.rbac.v1.RBAC) in env.
func New(config json.RawMessage, env filter.Env) (filter.Filter, error) {
	c, err := parse(config)
	if err != nil {
		return nil, err
	}
	f := &Filter{log: env.Logger}
	if f.rules, err = compile(c.GetRules(), "rules"); err != nil {
		return nil, err
	}
	if f.shadow, err = compile(c.GetShadowRules(), "shadow_rules"); err != nil {
		return nil, err
	}
	f.needIP = (f.rules != nil && f.rules.needIP) || (f.shadow != nil && f.shadow.needIP)
	p := StatPrefix(c.GetStatPrefix(), env.StatPrefix)
	f.allowed, f.denied = env.Stats.Counter(p+"allowed"), env.Stats.Counter(p+"denied")
	f.shadowAllowed, f.shadowDenied = env.Stats.Counter(p+"shadow_allowed"), env.Stats.Counter(p+"shadow_denied")
	f.logged, f.notLogged = env.Stats.Counter(p+"logged"), env.Stats.Counter(p+"not_logged")
	return f, nil
}

// StatPrefix returns the prefix of the filter's stats, "<prefix>rbac.",
// joined as Envoy joins it: a dot is added after statPrefix unless it ends
// with one. An empty statPrefix stands for the listener's, listener.
func StatPrefix(statPrefix, listener string) string {
	if statPrefix == "" {
		statPrefix = listener
	}
	if statPrefix != "" && !strings.HasSuffix(statPrefix, ".") {
		statPrefix += "."
	}
	return statPrefix + "rbac."
}

// OnRequest implements filter.Filter.
func (f *Filter) OnRequest(x *filter.Exchange) filter.Status {
	if f.rules == nil && f.shadow == nil {
		f.allowed.Inc()
		return filter.Continue
	}
	in := input{md: &x.Request.Meta}
	if f.needIP {
		in.ip = clientIP(x.Downstream)
	}
	if p, ok := PeerPrincipal.Get(x); ok && p != "" {
		in.principal, in.hasPrincipal = p, true
	}
	if f.shadow != nil {
		ok, policy, _ := f.shadow.allowed(&in)
		if ok {
			f.shadowAllowed.Inc()
		} else {
			f.shadowDenied.Inc()
		}
		if f.log.Enabled(context.Background(), slog.LevelDebug) {
			f.log.Debug("rbac shadow", "allowed", ok, "policy", policy, "downstream", x.Downstream,
				"interface", in.md.Value(codec.KeyService), "method", in.md.Value(codec.KeyMethod))
		}
	}
	if f.rules == nil {
		f.allowed.Inc()
		return filter.Continue
	}
	ok, policy, matched := f.rules.allowed(&in)
	if f.rules.action == envoy.RBAC_LOG {
		if matched {
			f.logged.Inc()
			if f.log.Enabled(context.Background(), slog.LevelInfo) {
				f.log.Info("rbac log", "policy", policy, "downstream", x.Downstream,
					"interface", in.md.Value(codec.KeyService), "method", in.md.Value(codec.KeyMethod))
			}
		} else {
			f.notLogged.Inc()
		}
	}
	if ok {
		f.allowed.Inc()
		return filter.Continue
	}
	f.denied.Inc()
	if f.log.Enabled(context.Background(), slog.LevelDebug) {
		f.log.Debug("rbac denied", "policy", policy, "downstream", x.Downstream,
			"interface", in.md.Value(codec.KeyService), "method", in.md.Value(codec.KeyMethod))
	}
	x.Outcome.Flags |= filter.FlagUnauthorized
	return x.Reply(codec.ErrUnauthorized, DeniedMessage)
}

// clientIP is the IP of the client address "ip:port" (or a bare IP), with
// an IPv4-mapped IPv6 address as IPv4 and without an IPv6 zone (which
// netip.Prefix.Contains never matches); invalid when there is none (a Unix
// socket, an empty address).
func clientIP(downstream string) netip.Addr {
	ap, err := netip.ParseAddrPort(downstream) // no allocation when it parses
	a := ap.Addr()
	if err != nil {
		if a, err = netip.ParseAddr(downstream); err != nil {
			return netip.Addr{}
		}
	}
	return a.Unmap().WithZone("")
}
