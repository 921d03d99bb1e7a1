package harness

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Real tRPC peers: trpc-go v1.1.0 servers and clients from
// test/peers/trpc, its own module (trpc-go's dependencies stay out of the
// test module), built with `go build` like the rate-limit service.

// TRPCPeerDir is the directory, relative to the test module, of the tRPC
// peer's module.
const TRPCPeerDir = "peers/trpc"

// TRPCService is the service the peer's servers export; its methods are
// SayHello, SayHi, EchoMeta, Fail (and the stream Chat).
const TRPCService = "trpc.test.helloworld.Greeter"

// TRPCFailCode is the business error code (func_ret) of the Fail method.
const TRPCFailCode = 1001

// TRPCFunc returns the full tRPC name of method m of TRPCService, the
// request's "func": "/trpc.test.helloworld.Greeter/SayHello".
func TRPCFunc(m string) string { return "/" + TRPCService + "/" + m }

// BuildTRPCPeer builds test/peers/trpc once per test process and returns
// the binary's path.
func BuildTRPCPeer(t testing.TB) string {
	t.Helper()
	b := moduleDirOnce(t, TRPCPeerDir, "trpcpeer")
	if b.err != nil {
		t.Fatalf("build %s: %v", TRPCPeerDir, b.err)
	}
	return b.bin
}

// TRPCServer is a running trpc-go server.
type TRPCServer struct {
	*Process
	Port int
	Tag  string
}

// StartTRPCServer starts a trpc-go server tagged tag on a free port of
// 127.0.0.1 and waits until it listens.
func StartTRPCServer(t testing.TB, tag string) *TRPCServer {
	t.Helper()
	bin := BuildTRPCPeer(t)
	port := FreePort(t)
	p := Start(t, "trpc server "+tag, bin, "-mode", "server", "-port", strconv.Itoa(port), "-tag", tag)
	return &TRPCServer{Process: p, Port: port, Tag: tag}
}

// Addr returns the server's "127.0.0.1:port".
func (s *TRPCServer) Addr() string { return Addr(s.Port) }

// HelloFrom returns the server's answer to SayHello(name).
func (s *TRPCServer) HelloFrom(name string) string {
	return "Hello " + name + ", response from " + s.Tag + "@" + s.Addr()
}

// HiFrom returns the server's answer to SayHi(name).
func (s *TRPCServer) HiFrom(name string) string {
	return "Hi " + name + ", response from " + s.Tag + "@" + s.Addr()
}

// TRPCCalls describes a run of the peer's client.
type TRPCCalls struct {
	Method string            // a method of TRPCService (SayHello when empty), or a full "/service/method"
	Callee string            // the callee service name; TRPCService when empty
	Name   string            // the argument; "{i}" is replaced by the call's index
	N      int               // number of calls; 1 when 0
	C      int               // calls made concurrently; 1 when 0
	Meta   map[string]string // trans_info of every call
	Oneway bool
	// Multiplexed uses trpc-go's multiplexed client transport: one
	// connection, responses matched by the head's stream id.
	Multiplexed bool
	Timeout     time.Duration // per call; 5s when 0
}

// TRPCResult is what the client reports: the outcome of every call.
type TRPCResult struct {
	OK     int       `json:"ok"`
	Errors int       `json:"errors"`
	Calls  []TRPCOne `json:"calls"`
}

// TRPCOne is one call's outcome: its reply, or the error trpc-go returned,
// with its code (errs.Code) and type ("callee framework" for a ret from
// the far side, "business" for a func_ret, "framework" for the client's
// own failures).
type TRPCOne struct {
	Reply     string            `json:"reply"`
	Code      int               `json:"code"`
	Type      string            `json:"type"`
	Error     string            `json:"error"`
	TransInfo map[string]string `json:"trans_info"`
}

// TRPCClient runs the peer's trpc-go client against addr and returns its
// result. Failed calls are in the result; err is for a client that did not
// run.
func TRPCClient(t testing.TB, addr string, c TRPCCalls) (TRPCResult, error) {
	t.Helper()
	bin := BuildTRPCPeer(t)
	args := []string{"-mode", "client", "-addr", addr, "-n", strconv.Itoa(max(c.N, 1))}
	if c.C > 1 {
		args = append(args, "-c", strconv.Itoa(c.C))
	}
	if c.Method != "" {
		args = append(args, "-func", c.Method)
	}
	if c.Callee != "" {
		args = append(args, "-callee", c.Callee)
	}
	if c.Name != "" {
		args = append(args, "-name", c.Name)
	}
	if c.Timeout != 0 {
		args = append(args, "-timeout", c.Timeout.String())
	}
	if c.Oneway {
		args = append(args, "-oneway")
	}
	if c.Multiplexed {
		args = append(args, "-multiplexed")
	}
	if len(c.Meta) > 0 {
		var kv []string
		for k, v := range c.Meta {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		args = append(args, "-meta", strings.Join(kv, ","))
	}
	out, stderr, err := Run(t, 2*time.Minute, bin, args...)
	var r TRPCResult
	if err != nil {
		return r, fmt.Errorf("trpc client %v: %w\nstdout:\n%s\nstderr:\n%s", args, err, out, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if js, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				return r, fmt.Errorf("trpc client result %q: %v", js, err)
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("trpc client %v printed no RESULT line\nstdout:\n%s\nstderr:\n%s", args, out, stderr)
}
