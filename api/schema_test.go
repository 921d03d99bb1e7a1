package api

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestSchemaMatchesAerakiAndEnvoy pins the field numbers that make the
// binary form interchangeable with Aeraki's and Envoy's messages. The
// numbers are those of Aeraki's meta-protocol-proxy protos and Envoy's v3
// API.
func TestSchemaMatchesAerakiAndEnvoy(t *testing.T) {
	fields := map[string]protoreflect.FieldNumber{
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.stat_prefix":           1,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.application_protocol":  2,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.rds":                   3,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.route_config":          4,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.codec":                 5,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.meta_protocol_filters": 6,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.tracing":               7,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.access_log":            8,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.idle_timeout":          11,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.protocol":              12,
		"aeraki.meta_protocol_proxy.v1alpha.Rds.config_source":                       1,
		"aeraki.meta_protocol_proxy.v1alpha.Rds.route_config_name":                   2,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolFilter.config":               2,
		"aeraki.meta_protocol_proxy.v1alpha.Codec.config":                            2,
		"aeraki.meta_protocol_proxy.v1alpha.ApplicationProtocol.name":                1,
		"aeraki.meta_protocol_proxy.v1alpha.ApplicationProtocol.codec":               2,
		"aeraki.meta_protocol_proxy.v1alpha.ApplicationProtocol.multiplexing":        3,
		"aeraki.meta_protocol_proxy.v1alpha.Tracing.client_sampling":                 3,
		"aeraki.meta_protocol_proxy.v1alpha.Tracing.random_sampling":                 4,
		"aeraki.meta_protocol_proxy.v1alpha.Tracing.overall_sampling":                5,
		"aeraki.meta_protocol_proxy.v1alpha.Tracing.verbose":                         6,
		"aeraki.meta_protocol_proxy.v1alpha.Tracing.max_tag_length":                  7,
		"aeraki.meta_protocol_proxy.v1alpha.Tracing.provider":                        9,

		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteConfiguration.routes":                        2,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.Route.match":                                      2,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.Route.route":                                      3,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.Route.request_mutation":                           19,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.Route.response_mutation":                          20,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteMatch.metadata":                              1,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.cluster":                              1,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.weighted_clusters":                    2,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.hash_policy":                          10,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.request_mirror_policies":              11,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.RequestMirrorPolicy.cluster":          1,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.RequestMirrorPolicy.runtime_fraction": 2,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.KeyValue.value":                                   2,

		// metaproxy extensions: numbers from 100 up, so they never clash with
		// fields Aeraki adds.
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.request_timeout":                    100,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.max_active_requests_per_connection": 101,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.max_active_requests":                102,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.max_buffered_bytes":                 103,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.frame_receive_timeout":              104,
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.max_connections":                    105,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.timeout":                     100,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteAction.retry_policy":                101,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RetryPolicy.num_retries":                 1,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RetryPolicy.per_try_timeout":             2,
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RetryPolicy.retry_on":                    3,

		"aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit.conditions":            3,
		"aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimitCondition.token_bucket": 2,
		"aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.RateLimit.timeout":                          3,
		"aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.RateLimit.failure_mode_deny":                4,
		"aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.RateLimit.rate_limit_service":               5,
		"aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.RateLimit.descriptors":                      6,
		"aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.Descriptor.descriptor_key":                  2,
		"aeraki.meta_protocol_proxy.filters.istio_stats.v1alpha.IstioStats.destination_service":           1,

		"metaproxy.envoy.v3.HeaderMatcher.exact_match":                    4,
		"metaproxy.envoy.v3.HeaderMatcher.safe_regex_match":               11,
		"metaproxy.envoy.v3.HeaderMatcher.range_match":                    6,
		"metaproxy.envoy.v3.HeaderMatcher.present_match":                  7,
		"metaproxy.envoy.v3.HeaderMatcher.invert_match":                   8,
		"metaproxy.envoy.v3.HeaderMatcher.prefix_match":                   9,
		"metaproxy.envoy.v3.HeaderMatcher.suffix_match":                   10,
		"metaproxy.envoy.v3.HeaderMatcher.contains_match":                 12,
		"metaproxy.envoy.v3.HeaderMatcher.string_match":                   13,
		"metaproxy.envoy.v3.HeaderMatcher.treat_missing_header_as_empty":  14,
		"metaproxy.envoy.v3.StringMatcher.safe_regex":                     5,
		"metaproxy.envoy.v3.StringMatcher.ignore_case":                    6,
		"metaproxy.envoy.v3.StringMatcher.contains":                       7,
		"metaproxy.envoy.v3.RegexMatcher.regex":                           2,
		"metaproxy.envoy.v3.WeightedCluster.total_weight":                 3,
		"metaproxy.envoy.v3.WeightedCluster.ClusterWeight.weight":         2,
		"metaproxy.envoy.v3.FractionalPercent.denominator":                2,
		"metaproxy.envoy.v3.RuntimeFractionalPercent.runtime_key":         2,
		"metaproxy.envoy.v3.TokenBucket.fill_interval":                    3,
		"metaproxy.envoy.v3.RateLimitServiceConfig.grpc_service":          2,
		"metaproxy.envoy.v3.RateLimitServiceConfig.transport_api_version": 4,
		"metaproxy.envoy.v3.ConfigSource.ads":                             3,
		"metaproxy.envoy.v3.ConfigSource.self":                            5,
		"metaproxy.envoy.v3.ConfigSource.resource_api_version":            6,
		"metaproxy.envoy.v3.ApiConfigSource.grpc_services":                4,
		"metaproxy.envoy.v3.ApiConfigSource.transport_api_version":        8,
		"metaproxy.envoy.v3.GrpcService.envoy_grpc":                       1,
		"metaproxy.envoy.v3.GrpcService.timeout":                          3,
		"metaproxy.envoy.v3.AccessLog.typed_config":                       4,
		"metaproxy.envoy.v3.FileAccessLog.log_format":                     5,
		"metaproxy.envoy.v3.SubstitutionFormatString.text_format_source":  5,
		"metaproxy.envoy.v3.DataSource.inline_string":                     3,
		"metaproxy.envoy.v3.Tracing.Http.typed_config":                    3,
	}
	for full, want := range fields {
		i := strings.LastIndexByte(full, '.')
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(full[:i]))
		if err != nil {
			t.Errorf("%s: message not registered: %v", full, err)
			continue
		}
		fd := d.(protoreflect.MessageDescriptor).Fields().ByName(protoreflect.Name(full[i+1:]))
		if fd == nil {
			t.Errorf("%s: no such field", full)
			continue
		}
		if fd.Number() != want {
			t.Errorf("%s = %d, want %d", full, fd.Number(), want)
		}
	}
}

// TestTypeURLs checks that the @type values of Aeraki and Envoy configs
// resolve.
func TestTypeURLs(t *testing.T) {
	for _, name := range []string{
		"aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy",
		"envoy.extensions.filters.network.meta_protocol_proxy.v1alpha.MetaProtocolProxy",
		"aeraki.meta_protocol_proxy.config.route.v1alpha.RouteConfiguration",
		"aeraki.meta_protocol_proxy.filters.router.v1alpha.Router",
		"aeraki.meta_protocol_proxy.filters.local_ratelimit.v1alpha.LocalRateLimit",
		"aeraki.meta_protocol_proxy.filters.ratelimit.v1alpha.RateLimit",
		"aeraki.meta_protocol_proxy.filters.metadata_exchange.v1alpha.MetadataExchange",
		"aeraki.meta_protocol_proxy.filters.istio_stats.v1alpha.IstioStats",
		"aeraki.meta_protocol.codec.DubboCodec",
		"aeraki.meta_protocol.codec.ThriftCodec",
		"aeraki.meta_protocol.codec.BrpcCodec",
		"aeraki.meta_protocol.codec.TrpcCodec",
		"envoy.extensions.access_loggers.file.v3.FileAccessLog",
		"envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
		"envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
		"udpa.type.v1.TypedStruct",
		"xds.type.v3.TypedStruct",
	} {
		if _, err := types.FindMessageByURL("type.googleapis.com/" + name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
