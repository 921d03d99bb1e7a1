// Package ratelimit is the global rate limit filter
// (aeraki.meta_protocol.filters.ratelimit, Aeraki's RateLimit): each
// matching request is checked with a rate limit service speaking Envoy's
// RLS API (envoyproxy/ratelimit). The call never blocks the connection or
// an Envoy worker: the filter pauses the request, a goroutine makes the
// gRPC call within the config's timeout, and resumes it. See README.md.
package ratelimit

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	rlcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/filter"
)

// Name is the filter's name in meta_protocol_filters; Alias is Aeraki's.
const (
	Name  = "ratelimit"
	Alias = "aeraki.meta_protocol.filters.ratelimit"
)

func init() {
	filter.MustRegister(filter.Definition{Name: Name, Aliases: []string{Alias}, New: New})
}

// Filter is a configured global rate limit.
type Filter struct {
	cfg       *config
	svc       *service
	key       string
	log       func(msg string, args ...any)
	closeOnce sync.Once

	ok, overLimit, failed, allowedOnFailure *filter.Stat
}

// New builds the filter of config (a RateLimit) in env; the rate limit
// service's cluster must be one of the listener's.
func New(config json.RawMessage, env filter.Env) (filter.Filter, error) {
	c, err := parse(config)
	if err != nil {
		return nil, err
	}
	cl, ok := env.Cluster(c.cluster)
	if !ok {
		return nil, fmt.Errorf("rate_limit_service.grpc_service.envoy_grpc.cluster_name: unknown cluster %q", c.cluster)
	}
	svc, key, err := acquire(cl)
	if err != nil {
		return nil, fmt.Errorf("rate_limit_service: %w", err)
	}
	p := env.StatPrefix + ".ratelimit."
	return &Filter{cfg: c, svc: svc, key: key, log: env.Logger.Warn,
		ok: env.Stats.Counter(p + "ok"), overLimit: env.Stats.Counter(p + "over_limit"),
		failed: env.Stats.Counter(p + "error"), allowedOnFailure: env.Stats.Counter(p + "failure_mode_allowed")}, nil
}

// OnRequest implements filter.Filter: a request that matches, and has at
// least one of the descriptors' properties, waits for the service.
func (f *Filter) OnRequest(x *filter.Exchange) filter.Status {
	if !f.cfg.match.Match(&x.Request.Meta) {
		return filter.Continue
	}
	req := f.request(&x.Request.Meta)
	if req == nil {
		return filter.Continue
	}
	go f.check(x, req)
	return filter.Pause
}

// request is the RLS request for md: one descriptor per configured entry
// whose property the request carries (as Aeraki sends them), nil if none.
func (f *Filter) request(md *codec.Metadata) *rlsv3.RateLimitRequest {
	var ds []*rlcommon.RateLimitDescriptor
	for _, d := range f.cfg.descriptors {
		if v, ok := md.Get(d.property); ok {
			ds = append(ds, &rlcommon.RateLimitDescriptor{Entries: []*rlcommon.RateLimitDescriptor_Entry{{Key: d.key, Value: v}}})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return &rlsv3.RateLimitRequest{Domain: f.cfg.domain, Descriptors: ds, HitsAddend: 1}
}

// check asks the service and resumes x with its verdict.
func (f *Filter) check(x *filter.Exchange, req *rlsv3.RateLimitRequest) {
	defer x.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.timeout)
	defer cancel()
	resp, err := f.svc.client.ShouldRateLimit(ctx, req)
	switch {
	case err != nil:
		f.failed.Inc()
		if f.cfg.deny {
			x.Outcome.Flags |= filter.FlagRateLimitServiceError
			x.Reply(codec.ErrUnavailable, "metaproxy: rate limit service unavailable (failure_mode_deny): %v", err)
			return
		}
		f.allowedOnFailure.Inc()
	case resp.GetOverallCode() == rlsv3.RateLimitResponse_OVER_LIMIT:
		f.overLimit.Inc()
		x.Outcome.Flags |= filter.FlagRateLimited
		x.Reply(codec.ErrOverloaded, "metaproxy: rate limited by the rate limit service (domain %q)", f.cfg.domain)
	default:
		f.ok.Inc()
	}
}

// Close implements io.Closer: the shared connection is let go.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() { release(f.key) })
	return nil
}
