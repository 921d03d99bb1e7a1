// Command kvpeer runs a KVP1 server or client (package kvpeer) for the
// end-to-end tests, which cannot import an internal package of another
// module.
//
//	kvpeer -mode server -tag s1                 # prints "READY <addr>"
//	kvpeer -mode client -addr A -n 10 -c 5 -pairs op=hello,name=x{i}
//
// The client prints "RESULT <json>": every call's status and pairs, or
// its error. -oneway sends oneway calls, -heartbeat heartbeats.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/metaproxy/metaproxy/codecs/declarative/internal/kvpeer"
)

// Result is what the client prints.
type Result struct {
	OK     int    `json:"ok"`
	Errors int    `json:"errors"`
	Calls  []Call `json:"calls"`
}

// Call is one call's outcome.
type Call struct {
	Flags  byte              `json:"flags,omitempty"`
	Status uint16            `json:"status"`
	Pairs  map[string]string `json:"pairs,omitempty"`
	Error  string            `json:"error,omitempty"`
}

func main() {
	mode := flag.String("mode", "server", "server or client")
	listen := flag.String("listen", "127.0.0.1:0", "server: address to listen on")
	tag := flag.String("tag", "kv", "server: its tag")
	addr := flag.String("addr", "", "client: the server or proxy")
	n := flag.Int("n", 1, "client: calls")
	c := flag.Int("c", 1, "client: concurrent callers")
	pairs := flag.String("pairs", "", "client: k=v,k=v of every call ({i}: the call's index)")
	oneway := flag.Bool("oneway", false, "client: oneway calls")
	heartbeat := flag.Bool("heartbeat", false, "client: heartbeats")
	flag.Parse()
	if *mode == "server" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s := kvpeer.Serve(ln, *tag)
		fmt.Println("READY", s.Addr())
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		s.Close()
		return
	}
	cl, err := kvpeer.Dial(*addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer cl.Close()
	res := Result{Calls: make([]Call, *n)}
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < max(*c, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res.Calls[i] = call(cl, i, *pairs, *oneway, *heartbeat)
			}
		}()
	}
	for i := 0; i < *n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, c := range res.Calls {
		if c.Error == "" && c.Status == kvpeer.StatusOK {
			res.OK++
		} else {
			res.Errors++
		}
	}
	js, _ := json.Marshal(res)
	fmt.Println("RESULT", string(js))
}

func call(cl *kvpeer.Client, i int, spec string, oneway, heartbeat bool) Call {
	var ps []kvpeer.Pair
	for _, kv := range strings.Split(spec, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			ps = append(ps, kvpeer.Pair{Key: k, Value: strings.ReplaceAll(v, "{i}", strconv.Itoa(i))})
		}
	}
	var f kvpeer.Frame
	var err error
	switch {
	case oneway:
		err = cl.Oneway(ps...)
	case heartbeat:
		f, err = cl.Heartbeat()
	default:
		f, err = cl.Call(ps...)
	}
	if err != nil {
		return Call{Error: err.Error()}
	}
	return Call{Flags: f.Flags, Status: f.Status, Pairs: f.Map()}
}
