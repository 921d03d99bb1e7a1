// Package builtin links the codecs and filters that ship with metaproxy.
// Both binaries (the standalone proxy and the Envoy plugin) import it; each
// codec or filter is one import here.
package builtin

import (
	_ "github.com/metaproxy/metaproxy/codecs/declarative" // metaproxy.codec.declarative
	_ "github.com/metaproxy/metaproxy/codecs/dubbo"       // aeraki.meta_protocol.codec.dubbo
	_ "github.com/metaproxy/metaproxy/codecs/mysql"       // metaproxy.codec.mysql
	_ "github.com/metaproxy/metaproxy/codecs/redis"       // metaproxy.codec.redis
	_ "github.com/metaproxy/metaproxy/codecs/thrift"      // aeraki.meta_protocol.codec.thrift
	_ "github.com/metaproxy/metaproxy/codecs/trpc"        // aeraki.meta_protocol.codec.trpc

	_ "github.com/metaproxy/metaproxy/filters/fault"            // metaproxy.filters.fault
	_ "github.com/metaproxy/metaproxy/filters/istiostats"       // aeraki.meta_protocol.filters.istio_stats
	_ "github.com/metaproxy/metaproxy/filters/localratelimit"   // aeraki.meta_protocol.filters.local_ratelimit
	_ "github.com/metaproxy/metaproxy/filters/metadataexchange" // aeraki.meta_protocol.filters.metadata_exchange
	_ "github.com/metaproxy/metaproxy/filters/ratelimit"        // aeraki.meta_protocol.filters.ratelimit
	_ "github.com/metaproxy/metaproxy/filters/rbac"             // metaproxy.filters.rbac
)
