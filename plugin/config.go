//go:build cgo

package main

import (
	"errors"
	"fmt"

	udpa "github.com/cncf/xds/go/udpa/type/v1"
	xdstype "github.com/cncf/xds/go/xds/type/v3"
	"github.com/metaproxy/metaproxy/plugin/shim"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metaproxy/metaproxy/api/v1alpha"
	"github.com/metaproxy/metaproxy/config"
	"github.com/metaproxy/metaproxy/filter"
	"github.com/metaproxy/metaproxy/proxy"
	"github.com/metaproxy/metaproxy/xds"
)

// proxyType is the message a plugin_config TypedStruct must describe.
var proxyType = (&v1alpha.MetaProtocolProxy{}).ProtoReflect().Descriptor().FullName()

// listenerConfig is one listener's compiled configuration, built once by the
// parser and shared by every connection of the listener. Exactly one of srv
// and err is set: a listener with a bad config refuses every connection.
type listenerConfig struct {
	name   string
	srv    *proxy.Server
	unbind func() // detaches srv from its management servers
	err    error
	key    string // the plugin_config it was built from

	// Guarded by registry.mu: see configs.go.
	sessions   int
	superseded bool // a newer config of the same listener was parsed
	closed     bool // srv is closed: superseded, and its last session ended
}

// parser is the plugin's shim.ConfigParser. Envoy calls it on its main
// thread once per listener config and keeps the result for the life of the
// process (the SDK never releases a config); the plugin shares identical
// configs and releases the engine of superseded ones (configs.go).
type parser struct{}

// ParseConfig compiles plugin_config. It cannot report an error to Envoy:
// a bad config is logged here and becomes a listenerConfig that closes
// every connection with one error line.
func (parser) ParseConfig(a *anypb.Any) (cfg any) {
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("panic while parsing plugin_config: %v", p)
			logger.Error("metaprotocol: invalid plugin_config: every connection will be refused", "error", err)
			cfg = &listenerConfig{err: err}
		}
	}()
	lc := parse(a)
	if lc.err != nil {
		logger.Error("metaprotocol: invalid plugin_config: every connection will be refused", "error", lc.err)
	} else {
		logger.Info("metaprotocol: listener configured", "stat_prefix", lc.name)
	}
	return lc
}

// parse returns the config of a: the one already built from the same
// plugin_config, or a new one that supersedes the older configs of its
// listener.
func parse(a *anypb.Any) *listenerConfig {
	value, err := pluginValue(a)
	if err != nil {
		return &listenerConfig{err: err}
	}
	if lc := registry.shared(string(value)); lc != nil {
		return lc
	}
	lc := compile(value)
	lc.key = string(value)
	registry.add(lc)
	return lc
}

func compile(value []byte) *listenerConfig {
	env := filter.Env{Logger: logger}
	l, err := config.ParsePluginConfig(value, env)
	if err != nil {
		return &listenerConfig{err: err}
	}
	for _, w := range l.Warnings {
		logger.Warn("metaprotocol: " + w)
	}
	node, err := xds.ParseNode(l.XDS.Node)
	if err != nil {
		return &listenerConfig{name: l.Name, err: fmt.Errorf("plugin_config: %w", err)}
	}
	xdsPool.Configure(node, l.XDS.Servers, l.XDS.ADS) // before New: EDS clusters subscribe as they are built
	xdsPool.ConfigureEnvoyAdmin(l.XDS.EnvoyAdmin)
	srv, err := proxy.New(l.Proxy, proxy.Options{Dialer: dialer{}, Clusters: clusters, Logger: logger.With("listener", l.Name)})
	if err != nil {
		return &listenerConfig{name: l.Name, err: err}
	}
	unbind, err := xdsPool.Bind(l, &l.XDS, srv)
	if err != nil {
		go srv.Close()
		return &listenerConfig{name: l.Name, err: err}
	}
	if l.MetricsAddress != "" {
		serveMetrics(l.MetricsAddress)
	}
	return &listenerConfig{name: l.Name, srv: srv, unbind: unbind}
}

// pluginValue returns the JSON of the MetaProtocolProxy carried by a, an
// xds.type.v3.TypedStruct (or its udpa.type.v1 predecessor) whose type_url
// is empty or names aeraki.meta_protocol_proxy.v1alpha.MetaProtocolProxy.
func pluginValue(a *anypb.Any) ([]byte, error) {
	if a == nil || a.GetTypeUrl() == "" {
		return nil, errors.New("plugin_config is missing: give an xds.type.v3.TypedStruct holding a MetaProtocolProxy")
	}
	var typeURL string
	var value *structpb.Struct
	switch a.MessageName() {
	case "xds.type.v3.TypedStruct":
		var ts xdstype.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return nil, fmt.Errorf("plugin_config: %w", err)
		}
		typeURL, value = ts.GetTypeUrl(), ts.GetValue()
	case "udpa.type.v1.TypedStruct":
		var ts udpa.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return nil, fmt.Errorf("plugin_config: %w", err)
		}
		typeURL, value = ts.GetTypeUrl(), ts.GetValue()
	default:
		return nil, fmt.Errorf("plugin_config is a %s: want an xds.type.v3.TypedStruct holding a MetaProtocolProxy", a.MessageName())
	}
	if typeURL != "" {
		if name := (&anypb.Any{TypeUrl: typeURL}).MessageName(); name != proxyType {
			return nil, fmt.Errorf("plugin_config: TypedStruct type_url is %q, want type.googleapis.com/%s", typeURL, proxyType)
		}
	}
	if value == nil {
		value = &structpb.Struct{}
	}
	return protojson.Marshal(value)
}

// factory is the plugin's shim.ConfigFactory. Envoy calls it for every
// new connection, so it only looks the parsed config up.
type factory struct{}

// CreateFactoryFromConfig returns the listener's config, which makes the
// connection's filter.
func (factory) CreateFactoryFromConfig(cfg any) shim.FilterFactory {
	if lc, ok := cfg.(*listenerConfig); ok {
		return lc
	}
	return &listenerConfig{err: fmt.Errorf("config of type %T was not made by this plugin's parser (is another plugin loaded with the same library_id?)", cfg)}
}
