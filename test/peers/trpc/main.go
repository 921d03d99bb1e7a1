// Command trpcpeer is a real tRPC peer for metaproxy's tests, built on
// trpc-go v1.1.0 with everything set up in code: no trpc_go.yaml, no code
// generation (a hand-written server.ServiceDesc, wrapperspb bodies). It is
// its own Go module so that trpc-go's dependencies stay out of the test
// module; test/harness builds it (see StartTRPCServer).
//
//	trpcpeer -mode server -port P [-tag NAME]
//	trpcpeer -mode client -addr H:P [-func SayHello] [-name N] [-n N] [-c C] [-meta k=v,...] [-oneway] [-multiplexed] [-timeout 5s]
//	trpcpeer -mode stream -addr H:P [-func Chat|Count|Repeat] [-streams S] [-msgs M] [-meta k=v,...] [-hold | -duration D] [-timeout 10s]
//	trpcpeer -mode capture -out DIR
//
// The server prints "READY 127.0.0.1:P" once it listens. The client makes
// -n unary calls (-c at a time) and prints one line "RESULT <json>" (see
// Result). stream opens S streams at once, sends M messages on each, and
// prints one line "RESULT <json>" (see StreamResult and stream.go); with
// -hold each Chat stream then sends "hold", which the server does not
// answer, and the client prints "READY holding" once all have, and waits
// for their ends; with -duration each Chat stream makes round trips for D.
// capture
// runs a server and a client through a recording relay and writes the
// frames they exchanged as golden files for codecs/trpc/testdata.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"trpc.group/trpc-go/trpc-go/log"
)

// Service is the service the server exports.
const Service = "trpc.test.helloworld.Greeter"

// Func returns the full tRPC name of method m of Service.
func Func(m string) string { return "/" + Service + "/" + m }

func main() {
	var (
		mode = flag.String("mode", "", "server | client | stream | capture")
		port = flag.Int("port", 0, "server: port to bind on 127.0.0.1")
		tag  = flag.String("tag", "server", "server: name in replies")
		out  = flag.String("out", "", "capture: directory of the golden files")
		cf   clientFlags
		sf   streamFlags
	)
	flag.StringVar(&cf.addr, "addr", "", "client: server (or proxy) address host:port")
	flag.StringVar(&cf.method, "func", "SayHello", "client: method of "+Service+" to call (or a full /service/method name); stream: Chat (default), Count or Repeat")
	flag.StringVar(&cf.callee, "callee", Service, "client: callee service name")
	flag.StringVar(&cf.name, "name", "world", "client: the call's argument")
	flag.IntVar(&cf.n, "n", 1, "client: number of calls")
	flag.IntVar(&cf.c, "c", 1, "client: concurrent callers")
	flag.StringVar(&cf.meta, "meta", "", "client: trans_info metadata k=v,k2=v2")
	flag.BoolVar(&cf.oneway, "oneway", false, "client: send oneway calls")
	flag.BoolVar(&cf.multiplexed, "multiplexed", false, "client: use trpc-go's multiplexed transport (one connection, responses matched by stream id)")
	flag.DurationVar(&cf.timeout, "timeout", 5*time.Second, "client: per-call timeout; stream: per stream, 10s by default (plus -duration)")
	flag.IntVar(&sf.streams, "streams", 1, "stream: concurrent streams")
	flag.IntVar(&sf.msgs, "msgs", 3, "stream: messages per stream (Repeat: replies asked for)")
	flag.BoolVar(&sf.hold, "hold", false, "stream: Chat: after -msgs messages send \"hold\" and wait for the stream to fail")
	flag.DurationVar(&sf.duration, "duration", 0, "stream: Chat: round trips as fast as possible for this long (bench)")
	flag.Parse()
	quietLogs()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	sf.addr, sf.method, sf.callee, sf.meta, sf.timeout = cf.addr, cf.method, cf.callee, cf.meta, cf.timeout
	if !set["func"] {
		sf.method = "Chat"
	}
	if !set["timeout"] {
		sf.timeout = 10 * time.Second
	}

	var err error
	switch *mode {
	case "server":
		err = runServer(*port, *tag)
	case "client":
		err = runClient(cf)
	case "stream":
		err = runStream(sf)
	case "capture":
		err = runCapture(*out)
	default:
		err = fmt.Errorf("unknown -mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR", err)
		os.Exit(1)
	}
}

// quietLogs keeps trpc-go's logs (which go to stdout) to errors.
func quietLogs() {
	log.SetLogger(log.NewZapLog(log.Config{{Writer: "console", Level: "error"}}))
}
