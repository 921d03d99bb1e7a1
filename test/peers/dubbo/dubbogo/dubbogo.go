// Package dubbogo sets dubbo-go v3 up for programs that configure it in
// code (no yaml, no registry). Importing it registers the slim set of
// extensions that the classic dubbo protocol with hessian2 needs, instead of
// dubbo-go's "imports" package, which pulls in every registry, config center
// and tracer (twice the packages, twice the binary). QuietLogs turns
// dubbo-go's and getty's logging down.
//
// The provider's default filter chain names echo, token, accesslog, tps,
// generic, execute and graceful_shutdown. dubbo-go v3.3.1 puts a nil filter
// in the chain for a name that is not registered, and the provider then
// fails every call (the consumer waits for a reply that never comes), so
// all of them are here.
package dubbogo

import (
	getty "github.com/apache/dubbo-getty"
	"github.com/dubbogo/gost/log/logger"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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

// QuietLogs sends dubbo-go's and getty's logs to stderr at warn level
// (getty logs every packet at debug by default). Call it before any client
// or server is made.
func QuietLogs() {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zapcore.WarnLevel)
	cfg.Encoding = "console"
	cfg.OutputPaths = []string{"stderr"}
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.DisableStacktrace = true
	logger.InitLogger(&logger.Config{ZapConfig: &cfg})
	getty.SetLogger(logger.GetLogger())
}
