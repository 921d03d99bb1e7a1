// Package api holds metaproxy's configuration schema and its loader.
//
// The schema is Aeraki's MetaProtocol Proxy schema: the protobuf packages
// aeraki.meta_protocol_proxy.v1alpha (package v1alpha below),
// aeraki.meta_protocol_proxy.config.route.v1alpha (route/v1alpha), the
// filter configurations (filters/*/v1alpha) and the codec configurations
// (codecconfig) keep Aeraki's package, message and field names and numbers,
// so Aeraki's configurations and its RDS server work unchanged. The Envoy
// messages these embed are mirrored, with Envoy's names and numbers, in the
// proto package metaproxy.envoy.v3 (package envoy), so that
// go-control-plane can be linked into the same binary without a registry
// conflict. The .proto sources live in api/proto; api/gen.sh regenerates
// the Go code.
//
// The loader reads YAML or JSON strictly: an unknown field, or a
// google.protobuf.Any whose @type is not known, is an error that names the
// field and its path. Any values may be typed messages, or
// udpa.type.v1.TypedStruct / xds.type.v3.TypedStruct wrappers whose value
// is checked against the named type when that type is known. ConfigJSON
// turns a filter or codec config into the JSON that factories consume.
//
// Errors are *Error values carrying the path of the offending field, with
// proto field names: route_config.routes[0].match.metadata[1].
package api
