// Command loadgen is the closed-loop load generator of the side-by-side
// benchmark (bench/run.sh): Workers callers on a real client library
// (dubbo-go v3 for Dubbo, Apache Thrift for Thrift), each waiting for its
// reply before the next call. A timed warm-up runs first and its calls are
// discarded; then the measured phase runs for a fixed duration.
//
//	loadgen -proto dubbo|thrift -addr H:P -c N [-warmup 2s] [-d 8s]
//
// With -conns N -rate R (Thrift only) it is an open-loop generator
// instead: R calls/s in total, evenly spread over N connections, each
// call's latency counted from the time it was due (see open.go). The
// summary then has the schedule's figures too (conns, sent, lost, lag).
//
// Output on stdout, one line each: "MEASURING" when the measured phase
// starts (the orchestrator samples the proxy's CPU counters then), and the
// summary (test/harness/load.Result as JSON) once it ends. Errors go to
// stderr with exit status 1. Logs of the client libraries go to stderr at
// warn level.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/metaproxy/metaproxy/test/harness/load"
)

// caller makes calls on behalf of worker w; it is safe for concurrent use
// by distinct workers.
type caller interface {
	Call(w int) error
	Close()
}

func main() {
	var (
		proto  = flag.String("proto", "", "dubbo | thrift")
		addr   = flag.String("addr", "", "host:port of the server or of the proxy in front of it")
		c      = flag.Int("c", 16, "concurrent callers (closed loop)")
		warmup = flag.Duration("warmup", 2*time.Second, "unmeasured warm-up")
		d      = flag.Duration("d", 8*time.Second, "measured phase")
		conns  = flag.Int("conns", 0, "open loop: connections (with -rate; -c is ignored)")
		rate   = flag.Float64("rate", 0, "open loop: total calls/s over the -conns connections")
	)
	flag.Parse()
	if *conns > 0 || *rate > 0 {
		if err := runOpen(*proto, *addr, *conns, *rate, *warmup, *d); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*proto, *addr, *c, *warmup, *d); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(proto, addr string, workers int, warmup, d time.Duration) error {
	if workers < 1 || d <= 0 {
		return fmt.Errorf("want -c >= 1 and -d > 0")
	}
	var (
		cl  caller
		err error
	)
	switch proto {
	case "dubbo":
		cl, err = dialDubbo(addr)
	case "thrift":
		cl, err = dialThrift(addr, workers)
	default:
		return fmt.Errorf("unknown -proto %q (want dubbo or thrift)", proto)
	}
	if err != nil {
		return err
	}
	defer cl.Close()
	// A call that fails before any load means a broken setup, not a result.
	if err := cl.Call(0); err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	if warmup > 0 {
		load.Run(load.Options{Workers: workers, Duration: warmup}, cl.Call)
	}
	fmt.Println("MEASURING")
	r := load.Run(load.Options{Workers: workers, Duration: d}, cl.Call)
	fmt.Println(r.JSON())
	return nil
}
