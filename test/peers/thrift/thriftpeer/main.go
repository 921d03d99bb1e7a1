// Command thriftpeer is a real Apache Thrift peer (Go library v0.17.0, code
// from Debian's thrift-compiler 0.17.0) for metaproxy's tests and
// benchmarks: a Hello server, a single-call client and a closed-loop load
// client.
//
//	thriftpeer -mode server -addr H:P [-tag NAME] [-transport T -protocol P] [-service S]
//	thriftpeer -mode client -addr H:P [-method M] [-name N] [-header k=v,...] [-transport T -protocol P]
//	thriftpeer -mode client -addr H:P -n N -c C | -d 10s   (load: one JSON line)
//
// A server prints READY once it accepts connections. A "header" server
// (-transport header -protocol header) answers framed, buffered and THeader
// clients of either protocol. -transport framed -protocol header (or
// header-compact) is a THeaderProtocol over a TFramedTransport, as Apache's
// clients speak for --transport framed --protocol header: client and server
// both. A single call prints the reply, or
// "EXCEPTION ..." for a thrown HelloError, "APPLICATION_EXCEPTION type=N ..."
// for a TApplicationException, "ERROR ..." for anything else (exit status 1
// for all three).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/harness/load"
	thriftpeer "github.com/metaproxy/metaproxy/test/peers/thrift"
	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

func main() {
	var (
		mode   = flag.String("mode", "", "server | client")
		addr   = flag.String("addr", "127.0.0.1:9090", "server: listen address; client: server address")
		tag    = flag.String("tag", "server", "server: name in sayHello replies")
		method = flag.String("method", "sayHello", "client: sayHello | ping | echoHeader | pingCount | echoBag")
		name   = flag.String("name", "world", "client: the call's argument")
		header = flag.String("header", "", "client: THeader info headers k=v,k2=v2")
		n      = flag.Int("n", 1, "client: number of calls")
		c      = flag.Int("c", 1, "client: concurrent callers, one connection each")
		d      = flag.Duration("d", 0, "client: run the load for this long instead of -n calls")
		warmup = flag.Int("warmup", 10, "client: unmeasured calls per worker before a load run")
		cfg    thriftpeer.Config
	)
	flag.StringVar(&cfg.Transport, "transport", "framed", "framed | buffered | header")
	flag.StringVar(&cfg.Protocol, "protocol", "binary", "binary | compact | header | header-compact (with -transport framed: THeader inside a framed transport)")
	flag.StringVar(&cfg.Service, "service", "", "multiplexed service name")
	flag.BoolVar(&cfg.NonStrict, "nonstrict", false, "client: write the old non-strict binary message head")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "connect and I/O timeout")
	flag.Parse()

	var err error
	switch *mode {
	case "server":
		err = serve(*addr, *tag, cfg)
	case "client":
		call := caller{method: *method, name: *name, headers: parseHeaders(*header)}
		if *n == 1 && *c == 1 && *d == 0 {
			err = single(*addr, cfg, call)
		} else {
			o := load.Options{Workers: *c, Calls: *n, Duration: *d, Warmup: *warmup}
			if *d > 0 {
				o.Calls = 0
			}
			err = loadRun(*addr, cfg, call, o)
		}
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Println(describe(err))
		os.Exit(1)
	}
}

func serve(addr, tag string, cfg thriftpeer.Config) error {
	s, err := thriftpeer.Serve(addr, tag, cfg)
	if err != nil {
		return err
	}
	fmt.Println("READY", s.Addr)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
	return s.Close()
}

// caller makes one kind of call.
type caller struct {
	method, name string
	headers      map[string]string
}

func (k caller) call(ctx context.Context, cl *thriftpeer.Client) (string, error) {
	if len(k.headers) > 0 {
		ctx = thriftpeer.WithHeaders(ctx, k.headers)
	}
	switch k.method {
	case "sayHello":
		return cl.SayHello(ctx, k.name)
	case "ping":
		return "", cl.Ping(ctx, k.name)
	case "echoHeader":
		return cl.EchoHeader(ctx, k.name)
	case "pingCount":
		v, err := cl.PingCount(ctx, k.name)
		return fmt.Sprint(v), err
	case "echoBag":
		b, err := cl.EchoBag(ctx, &hello.Bag{Text: k.name, Names: []string{k.name}})
		if err != nil {
			return "", err
		}
		return b.Text, nil
	}
	return "", fmt.Errorf("unknown -method %q", k.method)
}

func single(addr string, cfg thriftpeer.Config, k caller) error {
	cl, err := thriftpeer.Dial(addr, cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	out, err := k.call(context.Background(), cl)
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}

func loadRun(addr string, cfg thriftpeer.Config, k caller, o load.Options) error {
	clients := make([]*thriftpeer.Client, max(o.Workers, 1))
	for i := range clients {
		cl, err := thriftpeer.Dial(addr, cfg)
		if err != nil {
			return err
		}
		defer cl.Close()
		clients[i] = cl
	}
	ctx := context.Background()
	r := load.Run(o, func(w int) error {
		_, err := k.call(ctx, clients[w])
		return err
	})
	fmt.Println(r.JSON())
	return nil
}

func parseHeaders(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// describe renders a call error the way the package doc promises.
func describe(err error) string {
	var he *hello.HelloError
	var ae thrift.TApplicationException
	switch {
	case errors.As(err, &he):
		return fmt.Sprintf("EXCEPTION HelloError code=%d: %s", he.Code, he.Message)
	case errors.As(err, &ae):
		return fmt.Sprintf("APPLICATION_EXCEPTION type=%d: %s", ae.TypeId(), ae.Error())
	}
	return "ERROR " + err.Error()
}
