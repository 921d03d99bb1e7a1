package ratelimit

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	rlv1alpha "github.com/metaproxy/metaproxy/api/filters/ratelimit/v1alpha"
	"github.com/metaproxy/metaproxy/router"
)

// DefaultTimeout is the deadline of a rate-limit call when the config
// sets none (the proto's documented default).
const DefaultTimeout = 20 * time.Millisecond

// config is a checked RateLimit.
type config struct {
	match       router.Matchers // nil: every request
	domain      string
	timeout     time.Duration
	deny        bool
	cluster     string
	descriptors []descriptor
}

type descriptor struct{ property, key string }

// parse decodes and checks a RateLimit (canonical proto JSON; unknown
// fields are errors): a domain, a rate limit service naming a cluster
// (gRPC, not API v2), at least one descriptor with a property and a
// descriptor_key, and a well-formed match.
func parse(js json.RawMessage) (*config, error) {
	if len(js) == 0 {
		return nil, fmt.Errorf("a RateLimit config is required")
	}
	c := &rlv1alpha.RateLimit{}
	if err := api.Unmarshal(js, c); err != nil {
		return nil, err
	}
	out := &config{domain: c.GetDomain(), deny: c.GetFailureModeDeny(), timeout: DefaultTimeout}
	var err error
	if out.match, err = router.CompileMatch(c.GetMatch()); err != nil {
		return nil, fmt.Errorf("match.%w", err)
	}
	if out.domain == "" {
		return nil, fmt.Errorf("domain: value is required")
	}
	if t := c.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil || t.AsDuration() <= 0 {
			return nil, fmt.Errorf("timeout: %v is not a positive duration", t.AsDuration())
		}
		out.timeout = t.AsDuration()
	}
	rls := c.GetRateLimitService()
	switch {
	case rls == nil:
		return nil, fmt.Errorf("rate_limit_service: value is required")
	case rls.GetTransportApiVersion() == envoy.ApiVersion_V2:
		return nil, fmt.Errorf("rate_limit_service.transport_api_version: V2 is not supported")
	case rls.GetGrpcService().GetEnvoyGrpc().GetClusterName() == "":
		return nil, fmt.Errorf("rate_limit_service.grpc_service.envoy_grpc.cluster_name: value is required")
	}
	out.cluster = rls.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if len(c.GetDescriptors()) == 0 {
		return nil, fmt.Errorf("descriptors: at least one descriptor is required")
	}
	for i, d := range c.GetDescriptors() {
		if d.GetProperty() == "" {
			return nil, fmt.Errorf("descriptors[%d].property: value is required", i)
		}
		if d.GetDescriptorKey() == "" {
			return nil, fmt.Errorf("descriptors[%d].descriptor_key: value is required", i)
		}
		out.descriptors = append(out.descriptors, descriptor{d.GetProperty(), d.GetDescriptorKey()})
	}
	return out, nil
}
