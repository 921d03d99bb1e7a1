package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"dubbo.apache.org/dubbo-go/v3/client"
	"dubbo.apache.org/dubbo-go/v3/common/constant"
	"dubbo.apache.org/dubbo-go/v3/common/extension"
	"dubbo.apache.org/dubbo-go/v3/filter"
	"dubbo.apache.org/dubbo-go/v3/graceful_shutdown"
	"dubbo.apache.org/dubbo-go/v3/protocol/base"
	"dubbo.apache.org/dubbo-go/v3/protocol/result"

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
	version string // the calls' service version
	attach  string // attachments k=v,k2=v2 set on every call
	timing  bool   // sequential: prefix each line with the call's duration
	tally   bool   // load run: count the distinct replies
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
			start := time.Now()
			resp, err := invoke()
			prefix := ""
			if f.timing {
				prefix = fmt.Sprintf("%dms ", time.Since(start).Milliseconds())
			}
			if err != nil {
				fmt.Println(prefix+"ERROR", err)
				failed = true
				continue
			}
			fmt.Println(prefix + resp)
		}
		if failed {
			return errReported
		}
		return nil
	}
	var (
		tallyMu sync.Mutex
		tally   = map[string]int{}
	)
	call := func(int) error {
		resp, err := invoke()
		if err == nil && f.tally {
			tallyMu.Lock()
			tally[resp]++
			tallyMu.Unlock()
		}
		return err
	}
	o := load.Options{Workers: f.c, Calls: f.n, Duration: f.d, Warmup: f.warmup}
	if f.d > 0 {
		o.Calls = 0 // -d bounds the run; -n keeps its default of 1
	}
	r := load.Run(o, call)
	fmt.Println(r.JSON())
	if f.tally {
		replies := make([]string, 0, len(tally))
		for k := range tally {
			replies = append(replies, k)
		}
		sort.Strings(replies)
		for _, k := range replies {
			fmt.Printf("TALLY %d %s\n", tally[k], k)
		}
	}
	return nil
}

// attachFilter is the consumer filter that -attach installs: the dubbo-go
// client API has no per-call attachments for the dubbo protocol, so the
// filter sets them on every invocation, where the dubbo protocol encodes
// them into the request body.
type attachFilter struct{ atta map[string]string }

func (a *attachFilter) Invoke(ctx context.Context, invoker base.Invoker, inv base.Invocation) result.Result {
	for k, v := range a.atta {
		inv.SetAttachment(k, v)
	}
	return invoker.Invoke(ctx, inv)
}

func (a *attachFilter) OnResponse(_ context.Context, res result.Result, _ base.Invoker, _ base.Invocation) result.Result {
	return res
}

// attachFilterName is the name attachFilter registers under.
const attachFilterName = "dubbopeer-attach"

// dialConsumer builds a dubbo-go client for f.url. Dial panics in v3.3.1 when
// the provider is unreachable (gotcha 4); the panic becomes an error.
func dialConsumer(f consumerFlags) (conn *client.Connection, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("dial %s: dubbo-go panicked: %v", f.url, p)
		}
	}()
	opts := []client.ClientOption{
		client.WithClientProtocolDubbo(),
		client.WithClientSerialization("hessian2"),
		client.WithClientRetries(0),
		client.WithClientRequestTimeout(f.timeout),
		client.WithClientShutdown(graceful_shutdown.WithoutInternalSignal()),
	}
	if f.attach != "" {
		atta, err := parseAttach(f.attach)
		if err != nil {
			return nil, err
		}
		extension.SetFilter(attachFilterName, func() filter.Filter { return &attachFilter{atta: atta} })
		// The default consumer chain (graceful shutdown) and the attachments.
		opts = append(opts, client.WithClientFilter(constant.DefaultReferenceFilters+","+attachFilterName))
	}
	cli, err := client.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	refOpts := []client.ReferenceOption{client.WithURL(f.url), client.WithRequestTimeout(f.timeout)}
	if f.version != "" {
		refOpts = append(refOpts, client.WithVersion(f.version))
	}
	return cli.Dial(Interface, refOpts...)
}
