// Package localratelimit is the local rate limit filter
// (aeraki.meta_protocol.filters.local_ratelimit, Aeraki's LocalRateLimit):
// token buckets kept in the proxy and shared by every connection of the
// listener. A request takes a token from the bucket of the first condition
// it matches, else from the default bucket; with neither it passes. Over
// the limit it is answered with the protocol's overloaded error. See
// README.md.
//
// This filter is the example to copy when writing one: config.go parses
// and checks the config, filter.go is the filter, its stats are registered
// once in New, and filter_test.go drives it with filter/filtertest.
package localratelimit

import (
	"encoding/json"
	"time"

	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/router"
)

// Name is the filter's name in meta_protocol_filters; Alias is Aeraki's.
const (
	Name  = "local_ratelimit"
	Alias = "aeraki.meta_protocol.filters.local_ratelimit"
)

func init() {
	filter.MustRegister(filter.Definition{Name: Name, Aliases: []string{Alias}, New: New})
}

// Filter is a configured local rate limit.
type Filter struct {
	clock       filter.Clock
	conditions  []condition
	dflt        *bucket // nil: requests matching no condition pass
	prefix      string
	ok, limited *filter.Stat
}

type condition struct {
	match  router.Matchers
	bucket *bucket
}

// New builds the filter of config (a LocalRateLimit) in env.
func New(config json.RawMessage, env filter.Env) (filter.Filter, error) {
	c, err := parse(config)
	if err != nil {
		return nil, err
	}
	now := env.Clock.Now()
	f := &Filter{clock: env.Clock, prefix: c.GetStatPrefix(),
		ok: env.Stats.Counter(c.GetStatPrefix() + ".local_rate_limit.ok"), limited: env.Stats.Counter(c.GetStatPrefix() + ".local_rate_limit.rate_limited")}
	if tb := c.GetTokenBucket(); tb != nil {
		f.dflt = bucketOf(tb, now)
	}
	for _, cond := range c.GetConditions() {
		m, _ := router.CompileMatch(cond.GetMatch()) // checked by parse
		f.conditions = append(f.conditions, condition{match: m, bucket: bucketOf(cond.GetTokenBucket(), now)})
	}
	return f, nil
}

func bucketOf(tb *envoy.TokenBucket, now time.Time) *bucket {
	perFill := uint32(1)
	if v := tb.GetTokensPerFill(); v != nil {
		perFill = v.GetValue()
	}
	return newBucket(tb.GetMaxTokens(), perFill, tb.GetFillInterval().AsDuration(), now)
}

// OnRequest implements filter.Filter.
func (f *Filter) OnRequest(x *filter.Exchange) filter.Status {
	b := f.dflt
	for i := range f.conditions {
		if f.conditions[i].match.Match(&x.Request.Meta) {
			b = f.conditions[i].bucket
			break
		}
	}
	if b == nil {
		return filter.Continue
	}
	if !b.take(f.clock.Now()) {
		f.limited.Inc()
		x.Outcome.Flags |= filter.FlagRateLimited
		return x.Reply(codec.ErrOverloaded, "metaproxy: rate limited by local_ratelimit %q", f.prefix)
	}
	f.ok.Inc()
	return filter.Continue
}
