package api

import (
	"fmt"

	"github.com/metaproxy/metaproxy/api/envoy"
	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
	"github.com/metaproxy/metaproxy/api/v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Validate checks p against Aeraki's rules, which the schema itself does
// not enforce:
//   - stat_prefix is set;
//   - a protocol name is set (protocol.name or application_protocol) and a
//     codec with a name (protocol.codec or codec);
//   - rds (with a config source and a route_config_name) or route_config
//     is set, and static routes pass ValidateRouteConfiguration;
//   - every filter has a name, and every filter or codec config decodes;
//     known filter configs are validated too (local_ratelimit, ratelimit);
//   - tracing percentages lie in [0, 100], idle_timeout is not negative,
//     and every access log config decodes.
//
// The error names the offending field's path.
func Validate(p *v1alpha.MetaProtocolProxy) error {
	if err := validateProxy(p); err != nil {
		return fmt.Errorf("meta_protocol_proxy: %w", err)
	}
	return nil
}

// ValidateRouteConfiguration checks a route table: every route has a
// cluster or weighted clusters, matchers are well formed (regular
// expressions compile), mutations and hash policies respect Aeraki's
// limits, and mirror policies name a cluster. Of the metaproxy extensions,
// timeout and retry_policy.per_try_timeout must not be negative, nor
// per_try_timeout exceed a non-zero timeout; a retry_policy needs a
// retry_on of known conditions and allows at most 10 num_retries.
func ValidateRouteConfiguration(rc *routev1alpha.RouteConfiguration) error {
	if err := validateRoutes(rc, ""); err != nil {
		return fmt.Errorf("route_configuration: %w", err)
	}
	return nil
}

func validateProxy(p *v1alpha.MetaProtocolProxy) error {
	if p == nil {
		return &Error{Msg: "configuration is nil"}
	}
	if p.GetStatPrefix() == "" {
		return errorf("stat_prefix", "value is required")
	}
	if ProtocolName(p) == "" {
		return errorf("protocol.name", "an application protocol name is required (protocol.name, or the deprecated application_protocol)")
	}
	codec := CodecOf(p)
	if codec.GetName() == "" {
		return errorf("protocol.codec.name", "a codec name is required (protocol.codec.name, or the deprecated codec.name)")
	}
	if _, err := ConfigJSON(codec.GetConfig()); err != nil {
		return under(codecPath(p)+".config", err)
	}
	if err := validateRouteSpecifier(p); err != nil {
		return err
	}
	for i, f := range p.GetMetaProtocolFilters() {
		if err := validateFilter(f, index("meta_protocol_filters", i)); err != nil {
			return err
		}
	}
	if err := validateTracing(p.GetTracing(), "tracing"); err != nil {
		return err
	}
	for i, l := range p.GetAccessLog() {
		if err := validateAccessLog(l, index("access_log", i)); err != nil {
			return err
		}
	}
	return validateDuration(p.GetIdleTimeout(), "idle_timeout")
}

func validateRouteSpecifier(p *v1alpha.MetaProtocolProxy) error {
	switch spec := p.GetRouteSpecifier().(type) {
	case *v1alpha.MetaProtocolProxy_RouteConfig:
		return validateRoutes(spec.RouteConfig, "route_config")
	case *v1alpha.MetaProtocolProxy_Rds:
		if spec.Rds.GetRouteConfigName() == "" {
			return errorf("rds.route_config_name", "value is required")
		}
		return validateConfigSource(spec.Rds.GetConfigSource(), "rds.config_source")
	}
	return &Error{Msg: "route_config or rds is required"}
}

func validateFilter(f *v1alpha.MetaProtocolFilter, path string) error {
	if f.GetName() == "" {
		return errorf(field(path, "name"), "value is required")
	}
	return validateFilterConfig(f.GetConfig(), field(path, "config"))
}

// validateFilterConfig decodes a filter config strictly. What the config
// means is checked by the filter itself when it is built (filters/<name>).
func validateFilterConfig(a *anypb.Any, path string) error {
	if a == nil {
		return nil
	}
	_, err := ConfigJSON(a)
	return under(path, err)
}

func validateTracing(t *v1alpha.Tracing, path string) error {
	if t == nil {
		return nil
	}
	percents := []struct {
		name string
		p    *envoy.Percent
	}{
		{"client_sampling", t.GetClientSampling()},
		{"random_sampling", t.GetRandomSampling()},
		{"overall_sampling", t.GetOverallSampling()},
	}
	for _, pc := range percents {
		if v := pc.p.GetValue(); v < 0 || v > 100 {
			return errorf(join(path, pc.name+".value"), "%v is outside [0, 100]", v)
		}
	}
	if pr := t.GetProvider(); pr != nil {
		if pr.GetName() == "" {
			return errorf(join(path, "provider.name"), "value is required")
		}
		if _, err := ConfigJSON(pr.GetTypedConfig()); err != nil {
			return under(join(path, "provider.typed_config"), err)
		}
	}
	return nil
}

func validateAccessLog(l *envoy.AccessLog, path string) error {
	m, err := unpackOptional(l.GetTypedConfig())
	if err != nil {
		return under(field(path, "typed_config"), err)
	}
	if f, ok := m.(*envoy.FileAccessLog); ok && f.GetPath() == "" {
		return errorf(join(path, "typed_config.path"), "value is required")
	}
	return nil
}

// unpackOptional is unpack for an optional Any: nil gives nil.
func unpackOptional(a *anypb.Any) (proto.Message, error) {
	if a == nil {
		return nil, nil
	}
	return unpack(a)
}

func validateDuration(d *durationpb.Duration, path string) error {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return errorf(path, "invalid duration: %v", err)
	}
	if d.AsDuration() < 0 {
		return errorf(path, "duration %v is negative", d.AsDuration())
	}
	return nil
}
