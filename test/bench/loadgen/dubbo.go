package main

import (
	"context"
	"fmt"
	"time"

	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"

	"github.com/metaproxy/metaproxy/test/peers/dubbo/dubbogo" // the dubbo-go extensions of the dubbo protocol, quiet logs
)

// dubboInterface is the service test/peers/dubbo/dubbopeer's provider
// exports.
const dubboInterface = "org.apache.dubbo.samples.basic.api.DemoService"

// callTimeout bounds one call; a slower call counts as an error.
const callTimeout = 5 * time.Second

// dubboCaller is one dubbo-go consumer shared by every worker: dubbo-go
// multiplexes concurrent calls over its connections by request id, which
// is how Dubbo applications call a service.
type dubboCaller struct {
	conn *client.Connection
	args []any
}

func dialDubbo(addr string) (d *dubboCaller, err error) {
	dubbogo.QuietLogs()
	// Dial panics in dubbo-go v3.3.1 when the server is unreachable.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dial %s: dubbo-go panicked: %v", addr, p)
		}
	}()
	cli, err := client.NewClient(
		client.WithClientProtocolDubbo(),
		client.WithClientSerialization("hessian2"),
		client.WithClientRetries(0),
		// No signal handler: dubbo-go's graceful shutdown panics without a
		// registry; SIGTERM and SIGQUIT keep Go's default behaviour.
		client.WithClientShutdown(graceful_shutdown.WithoutInternalSignal()),
	)
	if err != nil {
		return nil, err
	}
	conn, err := cli.Dial(dubboInterface, client.WithURL("dubbo://"+addr), client.WithRequestTimeout(callTimeout))
	if err != nil {
		return nil, err
	}
	return &dubboCaller{conn: conn, args: []any{"bench"}}, nil
}

// Call makes one sayHello call.
func (d *dubboCaller) Call(int) error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var resp string
	return d.conn.CallUnary(ctx, d.args, &resp, "sayHello")
}

// Close does nothing: the process exits after the run, and dubbo-go v3.3.1
// has no way to close one client's connections.
func (d *dubboCaller) Close() {}
