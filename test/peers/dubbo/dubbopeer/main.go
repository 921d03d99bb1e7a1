// Command dubbopeer is a real Dubbo peer for metaproxy's end-to-end tests:
// a dubbo-go v3 provider, a dubbo-go consumer (single call or closed-loop
// load) and a raw client built on dubbo-go-hessian2. Everything is set up in
// code: no yaml, no registry. Replies go to stdout, dubbo-go's logs (warn and
// above) to stderr.
//
//	dubbopeer -mode provider -port P [-tag NAME] [-version V]
//	dubbopeer -mode consumer -url dubbo://H:P -name N [-method M] [-n N] [-c C | -d 10s] [-timeout 5s]
//	          [-version V] [-attach k=v,...] [-timing] [-tally]
//	dubbopeer -mode raw -addr H:P -method M -arg A [-attach k=v,...] [-n N] [-c C] [-oneway] [-heartbeat]
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/metaproxy/metaproxy/test/peers/dubbo/dubbogo"
)

// errReported marks a failure already printed as an ERROR line.
var errReported = errors.New("reported")

func main() {
	var (
		mode = flag.String("mode", "", "provider | consumer | raw")
		port = flag.Int("port", 0, "provider: port to bind on 127.0.0.1")
		tag  = flag.String("tag", "provider", "provider: name in sayHello replies")
		cf   consumerFlags
		rf   rawFlags
	)
	flag.StringVar(&cf.url, "url", "", "consumer: provider URL, dubbo://host:port")
	flag.StringVar(&cf.name, "name", "world", "consumer: the call's argument")
	flag.StringVar(&rf.addr, "addr", "", "raw: host:port")
	flag.StringVar(&rf.arg, "arg", "world", "raw: the call's argument; {i} is replaced by the call index")
	flag.StringVar(&rf.attach, "attach", "", "raw, consumer: attachments k=v,k2=v2")
	flag.StringVar(&rf.iface, "interface", Interface, "raw: service interface")
	flag.StringVar(&rf.version, "version", "", "raw, consumer: service version of the calls; provider: version the service is exported with")
	flag.StringVar(&rf.group, "group", "", "raw: service group")
	flag.BoolVar(&rf.oneway, "oneway", false, "raw: send oneway calls")
	flag.BoolVar(&rf.heartbeat, "heartbeat", false, "raw: send heartbeats instead of calls")
	method := flag.String("method", "sayHello", "method to call")
	n := flag.Int("n", 1, "number of calls")
	c := flag.Int("c", 1, "concurrent callers")
	flag.DurationVar(&cf.d, "d", 0, "consumer: run the load for this long instead of -n calls")
	flag.IntVar(&cf.warmup, "warmup", 10, "consumer: unmeasured calls per worker before a load run")
	flag.BoolVar(&cf.timing, "timing", false, "consumer: sequential calls print each line as \"<ms>ms <reply or ERROR ...>\"")
	flag.BoolVar(&cf.tally, "tally", false, "consumer: after a load run, print \"TALLY <count> <reply>\" for every distinct successful reply (warm-up calls included)")
	timeout := flag.Duration("timeout", 5*time.Second, "per-call timeout")
	flag.Parse()

	dubbogo.QuietLogs()
	cf.method, cf.n, cf.c, cf.timeout = *method, *n, *c, *timeout
	cf.version, cf.attach = rf.version, rf.attach
	rf.method, rf.n, rf.c, rf.timeout = *method, *n, *c, *timeout

	var err error
	switch *mode {
	case "provider":
		err = runProvider(*port, *tag, rf.version)
	case "consumer":
		err = runConsumer(cf)
	case "raw":
		err = runRaw(rf)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Println("ERROR", err)
		}
		os.Exit(1)
	}
}

// methodArgs converts a call's argument, given as text on the command line,
// into the argument list of the DemoService method.
func methodArgs(method, arg string) ([]any, error) {
	switch method {
	case "sleep":
		ms, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sleep takes milliseconds: %w", err)
		}
		return []any{ms}, nil
	case "notes":
		return []any{}, nil
	}
	return []any{arg}, nil
}
