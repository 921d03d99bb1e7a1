//go:build cgo

// Command plugin is metaprotocol.so, metaproxy's engine as a plugin for
// Envoy's golang network filter (envoy.filters.network.golang, Envoy
// v1.36). Build it with plugin/build.sh (make so); see
// envoy-configs/README.md for the Envoy and Istio configuration.
//
// Envoy hands every byte a client sends to the plugin; the plugin decodes
// frames, runs the MetaProtocol filters and router, and dials the chosen
// upstream host through Envoy's `plainText` ORIGINAL_DST cluster. This
// package and plugin/shim (the C entry points Envoy calls: the SDK's shim
// without its copy of every read and write) are the only ones that use
// cgo or Envoy's Go SDK.
package main

import (
	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
	"github.com/metaproxy/metaproxy/plugin/shim"

	_ "github.com/metaproxy/metaproxy/builtin" // the codecs and filters that ship with metaproxy
)

// PluginName is the name the golang filter's plugin_name must carry.
const PluginName = "metaprotocol"

func init() {
	setProcs()
	// The SDK's own logger implementation (api_impl) calls into Envoy at
	// init; this one asks Envoy nothing until the first log call.
	api.SetCommonCAPI(&envoyLog{})
	shim.RegisterConfigParser(parser{})
	shim.RegisterConfigFactory(PluginName, factory{})
}

func main() {}
