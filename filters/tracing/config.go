package tracing

import (
	"fmt"

	"github.com/metaproxy/metaproxy/api"
	"github.com/metaproxy/metaproxy/api/envoy"
	"github.com/metaproxy/metaproxy/api/v1alpha"
)

// million is the denominator of the sampling chances (Envoy's percentages
// to four decimals).
const million = 1_000_000

// defaultMaxTag is Envoy's default max_path_tag_length.
const defaultMaxTag = 256

type config struct {
	cluster, service        string
	protocol                string
	random, client, overall uint64 // per million
	maxTag                  int
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// parse checks t: a nil config and a warning when there is no provider
// (or one metaproxy does not run), else the provider must be
// envoy.tracers.opentelemetry with an OpenTelemetryConfig naming its
// collector cluster. Percentages are checked by api.Validate.
func parse(t *v1alpha.Tracing) (*config, string, error) {
	pr := t.GetProvider()
	if pr == nil {
		return nil, "tracing has no provider and metaproxy has no default tracer: tracing is off", nil
	}
	if pr.GetName() != Provider {
		return nil, fmt.Sprintf("tracing provider %q is not supported (only %s): tracing is off", pr.GetName(), Provider), nil
	}
	js, err := api.ConfigJSON(pr.GetTypedConfig())
	if err != nil {
		return nil, "", errorf("provider.typed_config: %v", err)
	}
	oc := &envoy.OpenTelemetryConfig{}
	if len(js) == 0 {
		return nil, "", errorf("provider.typed_config: an OpenTelemetryConfig is required")
	}
	if err := api.Unmarshal(js, oc); err != nil {
		return nil, "", errorf("provider.typed_config: %v", err)
	}
	name := oc.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if name == "" {
		return nil, "", errorf("provider.typed_config.grpc_service.envoy_grpc.cluster_name: value is required")
	}
	c := &config{cluster: name, service: oc.GetServiceName(), maxTag: defaultMaxTag,
		random: perMillion(t.GetRandomSampling()), client: perMillion(t.GetClientSampling()), overall: perMillion(t.GetOverallSampling())}
	if v := t.GetMaxTagLength(); v != nil && v.GetValue() > 0 {
		c.maxTag = int(v.GetValue())
	}
	return c, "", nil
}

// perMillion is a percentage as a chance per million; unset is 100%.
func perMillion(p *envoy.Percent) uint64 {
	if p == nil {
		return million
	}
	v := min(max(p.GetValue(), 0), 100)
	return uint64(v*10_000 + 0.5)
}
