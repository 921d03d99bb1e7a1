package api

import (
	"fmt"
	"strings"

	udpatype "github.com/cncf/xds/go/udpa/type/v1"
	xdstype "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/structpb"

	// The schema packages register their messages; importing them here
	// makes every @type of the schema resolvable wherever api is linked.
	_ "github.com/metaproxy/metaproxy/api/codecconfig"
	"github.com/metaproxy/metaproxy/api/envoy"
	_ "github.com/metaproxy/metaproxy/api/filters/fault/v1"
	_ "github.com/metaproxy/metaproxy/api/filters/istio_stats/v1alpha"
	_ "github.com/metaproxy/metaproxy/api/filters/local_ratelimit/v1alpha"
	_ "github.com/metaproxy/metaproxy/api/filters/metadata_exchange/v1alpha"
	_ "github.com/metaproxy/metaproxy/api/filters/ratelimit/v1alpha"
	_ "github.com/metaproxy/metaproxy/api/filters/rbac/v1"
	_ "github.com/metaproxy/metaproxy/api/filters/router/v1alpha"
	"github.com/metaproxy/metaproxy/api/v1alpha"
)

// aliases maps message names that appear as @type in Aeraki and Envoy
// configurations to the messages that stand for them here: Envoy's access
// loggers to their mirrors in package envoy, and the pre-rename name of
// MetaProtocolProxy to the current one. The wire forms are identical.
var aliases = map[protoreflect.FullName]protoreflect.MessageType{
	"envoy.extensions.access_loggers.file.v3.FileAccessLog":                          (&envoy.FileAccessLog{}).ProtoReflect().Type(),
	"envoy.extensions.access_loggers.stream.v3.StdoutAccessLog":                      (&envoy.StdoutAccessLog{}).ProtoReflect().Type(),
	"envoy.extensions.access_loggers.stream.v3.StderrAccessLog":                      (&envoy.StderrAccessLog{}).ProtoReflect().Type(),
	"envoy.config.trace.v3.OpenTelemetryConfig":                                      (&envoy.OpenTelemetryConfig{}).ProtoReflect().Type(),
	"envoy.extensions.filters.network.meta_protocol_proxy.v1alpha.MetaProtocolProxy": (&v1alpha.MetaProtocolProxy{}).ProtoReflect().Type(),
}

// typedStructs are the names of the two TypedStruct messages.
var typedStructs = map[protoreflect.FullName]bool{
	protoreflect.FullName("udpa.type.v1.TypedStruct"): true,
	protoreflect.FullName("xds.type.v3.TypedStruct"):  true,
}

// resolver resolves the @type of Any values: the aliases first, then every
// message linked into the binary.
type resolver struct{}

var types resolver

// FindMessageByName implements protoregistry.MessageTypeResolver.
func (resolver) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	if mt, ok := aliases[name]; ok {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByName(name)
}

// FindMessageByURL implements protoregistry.MessageTypeResolver. The name
// is what follows the last "/" of url.
func (r resolver) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	return r.FindMessageByName(typeName(url))
}

// FindExtensionByName implements protoregistry.ExtensionTypeResolver.
func (resolver) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByName(name)
}

// FindExtensionByNumber implements protoregistry.ExtensionTypeResolver.
func (resolver) FindExtensionByNumber(m protoreflect.FullName, n protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	return protoregistry.GlobalTypes.FindExtensionByNumber(m, n)
}

// typeName is the message name of a type URL.
func typeName(url string) protoreflect.FullName {
	if i := strings.LastIndexByte(url, '/'); i >= 0 {
		url = url[i+1:]
	}
	return protoreflect.FullName(url)
}

// resolve finds the message type of url, or fails with an *Error at path
// naming the type.
func resolve(url, path string) (protoreflect.MessageType, error) {
	if url == "" {
		return nil, errorf(path, "missing \"@type\"")
	}
	mt, err := types.FindMessageByURL(url)
	if err != nil {
		return nil, errorf(path, "unknown type %q", url)
	}
	return mt, nil
}

// sameType reports whether the type URL url names the message of md,
// directly or through an alias.
func sameType(url string, md protoreflect.MessageDescriptor) bool {
	mt, err := types.FindMessageByURL(url)
	return err == nil && mt.Descriptor().FullName() == md.FullName()
}

// typedStruct reads the type URL and value of a TypedStruct message of
// either flavour.
func typedStruct(m protoreflect.ProtoMessage) (string, *structpb.Struct, error) {
	switch ts := m.(type) {
	case *udpatype.TypedStruct:
		return ts.GetTypeUrl(), ts.GetValue(), nil
	case *xdstype.TypedStruct:
		return ts.GetTypeUrl(), ts.GetValue(), nil
	}
	return "", nil, fmt.Errorf("api: %T is not a TypedStruct", m)
}
