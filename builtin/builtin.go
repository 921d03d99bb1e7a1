// Package builtin links the codecs and filters that ship with metaproxy.
// Both binaries (the standalone proxy and the Envoy plugin) import it.
package builtin

import (
	_ "github.com/metaproxy/metaproxy/codecs/dubbo"  // aeraki.meta_protocol.codec.dubbo
	_ "github.com/metaproxy/metaproxy/codecs/thrift" // aeraki.meta_protocol.codec.thrift
)
