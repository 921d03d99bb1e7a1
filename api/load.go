package api

import (
	"fmt"

	"google.golang.org/protobuf/types/known/anypb"

	routev1alpha "github.com/metaproxy/metaproxy/api/route/v1alpha"
	"github.com/metaproxy/metaproxy/api/v1alpha"
)

// ParseProxy reads a MetaProtocolProxy from YAML or JSON (see Unmarshal
// for the accepted forms) and validates it (see Validate). Errors start
// with "meta_protocol_proxy: " and wrap an *Error.
func ParseProxy(data []byte) (*v1alpha.MetaProtocolProxy, error) {
	p := &v1alpha.MetaProtocolProxy{}
	if err := Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("meta_protocol_proxy: %w", err)
	}
	if err := Validate(p); err != nil {
		return nil, err
	}
	return p, nil
}

// ProxyFromAny reads a MetaProtocolProxy carried in an Any, the form in
// which Envoy hands a filter its config: a typed MetaProtocolProxy, or a
// udpa/xds TypedStruct whose type_url names it (as Aeraki emits it). It
// validates the result like ParseProxy.
func ProxyFromAny(a *anypb.Any) (*v1alpha.MetaProtocolProxy, error) {
	if a == nil {
		return nil, Validate(nil)
	}
	p := &v1alpha.MetaProtocolProxy{}
	if err := UnpackConfig(a, p); err != nil {
		return nil, fmt.Errorf("meta_protocol_proxy: %w", err)
	}
	if err := Validate(p); err != nil {
		return nil, err
	}
	return p, nil
}

// ParseRouteConfiguration reads a RouteConfiguration from YAML or JSON (see
// Unmarshal) and validates it (see ValidateRouteConfiguration). Errors
// start with "route_configuration: " and wrap an *Error.
func ParseRouteConfiguration(data []byte) (*routev1alpha.RouteConfiguration, error) {
	rc := &routev1alpha.RouteConfiguration{}
	if err := Unmarshal(data, rc); err != nil {
		return nil, fmt.Errorf("route_configuration: %w", err)
	}
	if err := ValidateRouteConfiguration(rc); err != nil {
		return nil, err
	}
	return rc, nil
}

// ProtocolName is the application protocol name of p, with Aeraki's
// precedence: protocol.name when set, else the deprecated
// application_protocol.
func ProtocolName(p *v1alpha.MetaProtocolProxy) string {
	if name := p.GetProtocol().GetName(); name != "" {
		return name
	}
	return p.GetApplicationProtocol()
}

// CodecOf is the codec of p, with Aeraki's precedence: protocol.codec when
// it has a name, else the deprecated codec. It is nil when neither is set.
func CodecOf(p *v1alpha.MetaProtocolProxy) *v1alpha.Codec {
	if c := p.GetProtocol().GetCodec(); c.GetName() != "" {
		return c
	}
	return p.GetCodec()
}

// codecPath is the path of the codec CodecOf returns.
func codecPath(p *v1alpha.MetaProtocolProxy) string {
	if p.GetProtocol().GetCodec().GetName() != "" {
		return "protocol.codec"
	}
	return "codec"
}
