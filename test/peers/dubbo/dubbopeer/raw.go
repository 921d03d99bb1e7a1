package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// rawFlags are the options of -mode raw.
type rawFlags struct {
	addr      string
	iface     string
	version   string
	group     string
	method    string
	arg       string // "{i}" is replaced by the call's index
	attach    string // k=v,k2=v2
	n, c      int
	timeout   time.Duration
	oneway    bool
	heartbeat bool
}

// parseAttach parses "k=v,k2=v2".
func parseAttach(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad attachment %q, want k=v", kv)
		}
		m[k] = v
	}
	return m, nil
}

// callArgs builds the argument list of call i and returns the argument as
// text, for the output line.
func (f *rawFlags) callArgs(i int) ([]any, string, error) {
	arg := strings.ReplaceAll(f.arg, "{i}", strconv.Itoa(i))
	args, err := methodArgs(f.method, arg)
	return args, arg, err
}

// runRaw makes f.n calls, f.c at a time, on ONE connection with distinct
// request ids. One call prints its reply alone; several print one line per
// call: "id=<id> arg=<arg> <reply>". It fails if any call failed.
func runRaw(f rawFlags) error {
	atta, err := parseAttach(f.attach)
	if err != nil {
		return err
	}
	conn, err := rawdubbo.Dial(f.addr, f.timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if f.oneway {
		return sendOneway(conn, f, atta)
	}
	lines := make([]string, f.n)
	failed := false
	var mu sync.Mutex
	sem := make(chan struct{}, max(f.c, 1))
	var wg sync.WaitGroup
	for i := 0; i < f.n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			line, ok := rawCall(conn, f, i, atta)
			mu.Lock()
			lines[i], failed = line, failed || !ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
	if failed {
		return errReported
	}
	return nil
}

// rawCall makes call i and renders its outcome.
func rawCall(conn *rawdubbo.Conn, f rawFlags, i int, atta map[string]string) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	id := conn.NextID()
	var (
		frame []byte
		err   error
		arg   string
	)
	if f.heartbeat {
		frame, err = rawdubbo.EncodeHeartbeat(id)
	} else {
		var args []any
		if args, arg, err = f.callArgs(i); err == nil {
			frame, err = rawdubbo.EncodeRequest(id, rawdubbo.Call{Interface: f.iface, Version: f.version,
				Group: f.group, Method: f.method, Args: args, Attachments: atta})
		}
	}
	var r rawdubbo.Reply
	if err == nil {
		r, err = conn.RoundTrip(ctx, id, frame, nil)
	}
	var out string
	switch {
	case err != nil:
		out = "ERROR transport " + err.Error()
	case f.heartbeat:
		out = fmt.Sprintf("HEARTBEAT %d", r.Status)
	default:
		out = r.String()
	}
	if f.n > 1 {
		out = fmt.Sprintf("id=%d arg=%s %s", id, arg, out)
	}
	return out, err == nil && r.OK()
}

// sendOneway sends f.n oneway calls and prints SENT once they are written.
func sendOneway(conn *rawdubbo.Conn, f rawFlags, atta map[string]string) error {
	for i := 0; i < f.n; i++ {
		args, _, err := f.callArgs(i)
		if err != nil {
			return err
		}
		if err := conn.Send(rawdubbo.Call{Interface: f.iface, Version: f.version, Group: f.group,
			Method: f.method, Args: args, Attachments: atta}); err != nil {
			return err
		}
	}
	fmt.Println("SENT", f.n)
	return nil
}
