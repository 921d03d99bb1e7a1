// Command mosn runs MOSN (mosn.io/mosn, the Go L7 proxy from Ant Group) as
// a peer of the side-by-side benchmark (test/bench): another L7 proxy that
// decodes every Dubbo call and routes it, to compare with metaproxy. It is
// its own Go module so that MOSN's dependencies stay out of the test
// module; test/harness builds it (see BuildMOSN). README.md says which
// MOSN version and why.
//
// It is MOSN's own cmd/mosn/main start command, cut down to what a static
// JSON config with the proxy network filter and the xprotocol codecs
// needs: no Istio/xDS parameters, no WebAssembly, no tracers but the
// defaults. Usage: mosn start -c <config.json>.
package main

import (
	"os"
	"time"

	"github.com/urfave/cli"

	"mosn.io/api"
	v2 "mosn.io/mosn/pkg/config/v2"
	"mosn.io/mosn/pkg/configmanager"
	"mosn.io/mosn/pkg/log"
	"mosn.io/mosn/pkg/mosn"
	"mosn.io/mosn/pkg/protocol/xprotocol"
	"mosn.io/mosn/pkg/protocol/xprotocol/bolt"
	"mosn.io/mosn/pkg/protocol/xprotocol/dubbo"
	"mosn.io/mosn/pkg/protocol/xprotocol/dubbothrift"
	"mosn.io/mosn/pkg/server"
	"mosn.io/mosn/pkg/stagemanager"
	xstream "mosn.io/mosn/pkg/stream/xprotocol"

	// The network filter "proxy", the router, the connection layer, the
	// xprotocol stream and protocol registries, as cmd/mosn/main imports
	// them.
	_ "mosn.io/mosn/pkg/filter/network/proxy"
	_ "mosn.io/mosn/pkg/network"
	_ "mosn.io/mosn/pkg/protocol"
	_ "mosn.io/mosn/pkg/router"
	_ "mosn.io/mosn/pkg/server/keeper"
	_ "mosn.io/mosn/pkg/stream/xprotocol"
	_ "mosn.io/pkg/buffer"
)

var logLevels = map[string]string{
	"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warning": "WARN",
	"error": "ERROR", "critical": "FATAL", "off": "OFF",
}

func main() {
	start := cli.Command{
		Name:  "start",
		Usage: "start mosn proxy",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "config, c", Usage: "load configuration from `FILE`", Value: "mosn.json"},
			cli.StringFlag{Name: "log-level, l", Usage: "trace|debug|info|warning|error|critical|off"},
		},
		Action: func(c *cli.Context) error {
			app := mosn.NewMosn()
			stm := stagemanager.InitStageManager(c, c.String("config"), app)
			stm.AppendParamsParsedStage(registerCodecs)
			stm.AppendParamsParsedStage(func(c *cli.Context) {
				if l, ok := logLevels[c.String("log-level")]; ok {
					if l == "OFF" {
						log.GetErrorLoggerManagerInstance().Disable()
					} else {
						log.GetErrorLoggerManagerInstance().SetLogLevelControl(configmanager.ParseLogLevel(l))
					}
				}
			})
			stm.AppendInitStage(func(*v2.MOSNConfig) { server.SetDrainTime(time.Second) })
			stm.AppendInitStage(mosn.DefaultInitStage)
			stm.AppendPreStartStage(mosn.DefaultPreStartStage)
			stm.AppendStartStage(mosn.DefaultStartStage)
			stm.RunAll()
			return nil
		},
	}
	app := cli.NewApp()
	app.Name = "mosn"
	app.Usage = "MOSN for metaproxy's side-by-side benchmark"
	app.Commands = []cli.Command{start}
	if err := app.Run(os.Args); err != nil {
		os.Exit(1)
	}
}

// registerCodecs registers the xprotocol stream layer and the codecs, as
// cmd/mosn/main's ExtensionsRegister does (less the tracers).
func registerCodecs(*cli.Context) {
	xprotocol.RegisterXProtocolAction(xstream.NewConnPool, xstream.NewStreamFactory, func(api.XProtocolCodec) {})
	_ = xprotocol.RegisterXProtocolCodec(&bolt.XCodec{})
	_ = xprotocol.RegisterXProtocolCodec(&dubbo.XCodec{})
	_ = xprotocol.RegisterXProtocolCodec(&dubbothrift.XCodec{})
}
