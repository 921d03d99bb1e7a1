package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/wrapperspb"
	trpc "trpc.group/trpc-go/trpc-go"
	"trpc.group/trpc-go/trpc-go/codec"
	"trpc.group/trpc-go/trpc-go/errs"
	"trpc.group/trpc-go/trpc-go/server"
	"trpc.group/trpc-go/trpc-go/stream"
)

// FailCode is the business error code Fail returns (a func_ret).
const FailCode = 1001

// greeter is the service implementation: every method takes and returns a
// wrapperspb.StringValue.
//
//   - SayHello(name) → "Hello <name>, response from <tag>@<addr>"; the
//     response's trans_info has x-served-by = tag, and a request
//     attachment is echoed as the response's.
//   - SayHi(name) → "Hi <name>, response from <tag>@<addr>".
//   - EchoMeta(key) → the request's trans_info value of key, or "<absent>".
//   - Fail(text) → the business error FailCode "failed: <text>".
//   - Chat (bidirectional stream): each message m is answered "echo: m",
//     except "whoami", answered with the tag, and "hold", not answered: the
//     stream then answers nothing more and ends when its context does or
//     when the client's side ends (its close or reset, or the connection
//     failing), so that a test can kill the server mid-stream.
//   - Count (client stream): after the client's close, one message
//     "got N: a,b,c", the N messages joined with commas.
//   - Repeat (server stream): one message "text*N" is answered with N
//     messages "text #1" … "text #N", then the stream ends.
type greeter struct {
	tag, addr string
}

// unary adapts a func(ctx, argument) to a trpc-go method handler.
func unary(f func(g *greeter, ctx context.Context, arg string) (string, error)) server.Method {
	return server.Method{Func: func(svr any, ctx context.Context, ff server.FilterFunc) (any, error) {
		req := &wrapperspb.StringValue{}
		filters, err := ff(req)
		if err != nil {
			return nil, err
		}
		h := func(ctx context.Context, r any) (any, error) {
			s, err := f(svr.(*greeter), ctx, r.(*wrapperspb.StringValue).GetValue())
			if err != nil {
				return nil, err
			}
			return wrapperspb.String(s), nil
		}
		return filters.Filter(ctx, req, h)
	}}
}

func (g *greeter) sayHello(ctx context.Context, name string) (string, error) {
	msg := codec.Message(ctx)
	trpc.SetMetaData(ctx, "x-served-by", []byte(g.tag))
	if a := server.GetAttachment(msg); a != nil {
		if b, err := io.ReadAll(a.Request()); err == nil && len(b) > 0 {
			a.SetResponse(strings.NewReader("re: " + string(b)))
		}
	}
	return "Hello " + name + ", response from " + g.tag + "@" + g.addr, nil
}

func (g *greeter) sayHi(_ context.Context, name string) (string, error) {
	return "Hi " + name + ", response from " + g.tag + "@" + g.addr, nil
}

func (g *greeter) echoMeta(ctx context.Context, key string) (string, error) {
	if v, ok := codec.Message(ctx).ServerMetaData()[key]; ok {
		return string(v), nil
	}
	return "<absent>", nil
}

func (g *greeter) fail(_ context.Context, text string) (string, error) {
	return "", errs.New(FailCode, "failed: "+text)
}

func (g *greeter) chat(s server.Stream) error {
	for {
		m := &wrapperspb.StringValue{}
		if err := s.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		reply := "echo: " + m.GetValue()
		switch m.GetValue() {
		case "whoami":
			reply = g.tag
		case "hold":
			return hold(s)
		}
		if err := s.SendMsg(wrapperspb.String(reply)); err != nil {
			return err
		}
	}
}

// hold answers nothing more on s: it discards what the client sends and
// returns when s's context ends or the client's side does. (trpc-go's
// server stream contexts descend from context.Background: only the
// client's side ending, or the connection failing, ends a held stream.)
func hold(s server.Stream) error {
	ended := make(chan error, 1)
	go func() {
		for {
			if err := s.RecvMsg(&wrapperspb.StringValue{}); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				ended <- err
				return
			}
		}
	}()
	select {
	case <-s.Context().Done():
		return s.Context().Err()
	case err := <-ended:
		return err
	}
}

func (g *greeter) count(s server.Stream) error {
	var got []string
	for {
		m := &wrapperspb.StringValue{}
		if err := s.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return err
		}
		got = append(got, m.GetValue())
	}
	return s.SendMsg(wrapperspb.String(fmt.Sprintf("got %d: %s", len(got), strings.Join(got, ","))))
}

func (g *greeter) repeat(s server.Stream) error {
	m := &wrapperspb.StringValue{}
	if err := s.RecvMsg(m); err != nil {
		return err
	}
	text, ns, ok := strings.Cut(m.GetValue(), "*")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 0 {
		return errs.New(FailCode, fmt.Sprintf("repeat: %q is not text*N", m.GetValue()))
	}
	for i := 1; i <= n; i++ {
		if err := s.SendMsg(wrapperspb.String(fmt.Sprintf("%s #%d", text, i))); err != nil {
			return err
		}
	}
	return nil
}

// serviceDesc describes greeter to trpc-go.
func serviceDesc() *server.ServiceDesc {
	methods := []server.Method{
		unary((*greeter).sayHello), unary((*greeter).sayHi), unary((*greeter).echoMeta), unary((*greeter).fail),
	}
	for i, n := range []string{"SayHello", "SayHi", "EchoMeta", "Fail"} {
		methods[i].Name = Func(n)
	}
	return &server.ServiceDesc{
		ServiceName:  Service,
		HandlerType:  (*any)(nil),
		Methods:      methods,
		StreamHandle: stream.NewStreamDispatcher(),
		Streams: []server.StreamDesc{{
			StreamName:    Func("Chat"),
			Handler:       func(svr any, s server.Stream) error { return svr.(*greeter).chat(s) },
			ClientStreams: true,
			ServerStreams: true,
		}, {
			StreamName:    Func("Count"),
			Handler:       func(svr any, s server.Stream) error { return svr.(*greeter).count(s) },
			ClientStreams: true,
		}, {
			StreamName:    Func("Repeat"),
			Handler:       func(svr any, s server.Stream) error { return svr.(*greeter).repeat(s) },
			ServerStreams: true,
		}},
	}
}

// startServer starts a greeter tagged tag on addr (port 0: any free port)
// and returns its service and address.
func startServer(addr, tag string) (server.Service, string, error) {
	// Bind first to learn the port; trpc-go binds again.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	addr = ln.Addr().String()
	ln.Close()
	s := server.New(
		server.WithServiceName(Service),
		server.WithProtocol("trpc"),
		server.WithNetwork("tcp"),
		server.WithAddress(addr),
	)
	if err := s.Register(serviceDesc(), &greeter{tag: tag, addr: addr}); err != nil {
		return nil, "", err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	if err := waitListening(addr, errc); err != nil {
		return nil, "", err
	}
	return s, addr, nil
}

// runServer serves until killed.
func runServer(port int, tag string) error {
	_, addr, err := startServer(fmt.Sprintf("127.0.0.1:%d", port), tag)
	if err != nil {
		return err
	}
	fmt.Println("READY", addr)
	select {}
}
