// Package dubbogo registers the slim set of dubbo-go v3 extensions that the
// classic dubbo protocol with hessian2 needs, for programs that set dubbo-go
// up in code (no yaml, no registry). Import it for its side effects instead
// of dubbo-go's "imports" package, which pulls in every registry, config
// center and tracer (twice the packages, twice the binary):
//
//	import _ "github.com/metaproxy/metaproxy/test/peers/dubbo/dubbogo"
//
// The provider's default filter chain names echo, token, accesslog, tps,
// generic, execute and graceful_shutdown. dubbo-go v3.3.1 puts a nil filter
// in the chain for a name that is not registered, and the provider then
// fails every call (the consumer waits for a reply that never comes), so
// all of them are here.
package dubbogo

import (
	_ "dubbo.apache.org/dubbo-go/v3/cluster/cluster/failfast"
	_ "dubbo.apache.org/dubbo-go/v3/cluster/cluster/failover"
	_ "dubbo.apache.org/dubbo-go/v3/cluster/loadbalance/random"
	_ "dubbo.apache.org/dubbo-go/v3/filter/accesslog"
	_ "dubbo.apache.org/dubbo-go/v3/filter/echo"
	_ "dubbo.apache.org/dubbo-go/v3/filter/exec_limit"
	_ "dubbo.apache.org/dubbo-go/v3/filter/generic"
	_ "dubbo.apache.org/dubbo-go/v3/filter/graceful_shutdown"
	_ "dubbo.apache.org/dubbo-go/v3/filter/token"
	_ "dubbo.apache.org/dubbo-go/v3/filter/tps"
	_ "dubbo.apache.org/dubbo-go/v3/filter/tps/limiter"
	_ "dubbo.apache.org/dubbo-go/v3/filter/tps/strategy"
	_ "dubbo.apache.org/dubbo-go/v3/protocol/dubbo"
	_ "dubbo.apache.org/dubbo-go/v3/proxy/proxy_factory"
)
