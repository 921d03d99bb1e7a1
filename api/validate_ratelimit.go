package api

import (
	"github.com/metaproxy/metaproxy/api/envoy"
)

func validateGrpcService(g *envoy.GrpcService, path string) error {
	if g.GetEnvoyGrpc().GetClusterName() == "" {
		return errorf(join(path, "envoy_grpc.cluster_name"), "value is required")
	}
	return validateDuration(g.GetTimeout(), field(path, "timeout"))
}

// validateConfigSource checks the RDS config source: an ADS, self or gRPC
// API source, with a cluster for gRPC, and never xDS v2.
func validateConfigSource(cs *envoy.ConfigSource, path string) error {
	if cs == nil {
		return errorf(path, "value is required")
	}
	if cs.GetResourceApiVersion() == envoy.ApiVersion_V2 {
		return errorf(field(path, "resource_api_version"), "V2 is not supported")
	}
	if err := validateDuration(cs.GetInitialFetchTimeout(), field(path, "initial_fetch_timeout")); err != nil {
		return err
	}
	switch spec := cs.GetConfigSourceSpecifier().(type) {
	case *envoy.ConfigSource_Ads, *envoy.ConfigSource_Self:
		return nil
	case *envoy.ConfigSource_ApiConfigSource:
		return validateAPISource(spec.ApiConfigSource, field(path, "api_config_source"))
	}
	return errorf(path, "api_config_source, ads or self is required")
}

func validateAPISource(s *envoy.ApiConfigSource, path string) error {
	if s.GetTransportApiVersion() == envoy.ApiVersion_V2 {
		return errorf(field(path, "transport_api_version"), "V2 is not supported")
	}
	switch s.GetApiType() {
	case envoy.ApiConfigSource_GRPC, envoy.ApiConfigSource_DELTA_GRPC,
		envoy.ApiConfigSource_AGGREGATED_GRPC, envoy.ApiConfigSource_AGGREGATED_DELTA_GRPC:
	default:
		return errorf(field(path, "api_type"), "%v is not supported; use GRPC or DELTA_GRPC", s.GetApiType())
	}
	if len(s.GetGrpcServices()) == 0 {
		return errorf(field(path, "grpc_services"), "at least one gRPC service is required")
	}
	for i, g := range s.GetGrpcServices() {
		if err := validateGrpcService(g, index(field(path, "grpc_services"), i)); err != nil {
			return err
		}
	}
	return nil
}
