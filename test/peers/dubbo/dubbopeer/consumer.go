package main

import (
	"context"
	"fmt"
	"time"

	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"

	"github.com/metaproxy/metaproxy/test/harness/load"
)

// consumerFlags are the options of -mode consumer.
type consumerFlags struct {
	url     string
	name    string
	method  string
	timeout time.Duration
	n, c    int
	d       time.Duration
	warmup  int
}

// sequential reports whether the flags ask for calls one after another,
// each reply printed, rather than a measured load run (-c > 1 or -d).
func (f *consumerFlags) sequential() bool { return f.c <= 1 && f.d == 0 }

// runConsumer calls the provider at f.url with the dubbo-go client.
// Sequential calls (-c 1, no -d) print one line each, the reply or "ERROR
// <message>", and fail if any call failed; a load run prints one JSON
// summary line.
func runConsumer(f consumerFlags) error {
	args, err := methodArgs(f.method, f.name)
	if err != nil {
		return err
	}
	conn, err := dialConsumer(f)
	if err != nil {
		return err
	}
	invoke := func() (string, error) {
		var resp string
		ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		err := conn.CallUnary(ctx, args, &resp, f.method)
		return resp, err
	}
	if f.sequential() {
		failed := false
		for range max(f.n, 1) {
			resp, err := invoke()
			if err != nil {
				fmt.Println("ERROR", err)
				failed = true
				continue
			}
			fmt.Println(resp)
		}
		if failed {
			return errReported
		}
		return nil
	}
	call := func(int) error { _, err := invoke(); return err }
	o := load.Options{Workers: f.c, Calls: f.n, Duration: f.d, Warmup: f.warmup}
	if f.d > 0 {
		o.Calls = 0 // -d bounds the run; -n keeps its default of 1
	}
	r := load.Run(o, call)
	fmt.Println(r.JSON())
	return nil
}

// dialConsumer builds a dubbo-go client for f.url. Dial panics in v3.3.1 when
// the provider is unreachable (gotcha 4); the panic becomes an error.
func dialConsumer(f consumerFlags) (conn *client.Connection, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dial %s: dubbo-go panicked: %v", f.url, p)
		}
	}()
	cli, err := client.NewClient(
		client.WithClientProtocolDubbo(),
		client.WithClientSerialization("hessian2"),
		client.WithClientRetries(0),
		client.WithClientRequestTimeout(f.timeout),
		client.WithClientShutdown(graceful_shutdown.WithoutInternalSignal()),
	)
	if err != nil {
		return nil, err
	}
	return cli.Dial(Interface, client.WithURL(f.url), client.WithRequestTimeout(f.timeout))
}
