package thriftpeer

import (
	"context"
	"fmt"
	"sync"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/metaproxy/metaproxy/test/peers/thrift/gen/hello"
)

// ErrorName is the sayHello argument for which servers throw HelloError.
const ErrorName = "error"

// ErrorCode is the code of the HelloError thrown for ErrorName.
const ErrorCode = 42

// Server is a running Hello server.
type Server struct {
	// Addr is the address the server listens on.
	Addr string
	srv  *thrift.TSimpleServer
	done chan error
}

// Serve starts a Hello server on addr ("127.0.0.1:0" picks a free port)
// that tags its replies with tag. It returns once the server accepts
// connections.
func Serve(addr, tag string, c Config) (*Server, error) {
	tf, pf, err := c.factories()
	if err != nil {
		return nil, err
	}
	sock, err := thrift.NewTServerSocket(addr)
	if err != nil {
		return nil, err
	}
	if err := sock.Listen(); err != nil {
		return nil, err
	}
	h := &handler{addr: sock.Addr().String(), tag: tag, pings: map[string]int32{}}
	var proc thrift.TProcessor = hello.NewHelloProcessor(h)
	if c.Service != "" {
		mp := thrift.NewTMultiplexedProcessor()
		mp.RegisterProcessor(c.Service, proc)
		mp.RegisterDefault(proc)
		proc = mp
	}
	srv := thrift.NewTSimpleServer4(proc, sock, tf, pf)
	srv.SetLogger(func(string) {})
	s := &Server{Addr: h.addr, srv: srv, done: make(chan error, 1)}
	go func() { s.done <- srv.AcceptLoop() }()
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	err := s.srv.Stop()
	<-s.done
	return err
}

// handler implements the Hello service.
type handler struct {
	addr, tag string
	mu        sync.Mutex
	pings     map[string]int32
}

// Reply is the greeting a server with tag at addr gives name.
func Reply(name, tag, addr string) string {
	return fmt.Sprintf("Hello %s, response from %s@%s", name, tag, addr)
}

func (h *handler) SayHello(_ context.Context, name string) (string, error) {
	if name == ErrorName {
		return "", &hello.HelloError{Message: "no greeting for " + name + " from " + h.tag, Code: ErrorCode}
	}
	return Reply(name, h.tag, h.addr), nil
}

func (h *handler) Ping(_ context.Context, note string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pings[note]++
	return nil
}

func (h *handler) PingCount(_ context.Context, note string) (int32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pings[note], nil
}

func (h *handler) EchoHeader(ctx context.Context, key string) (string, error) {
	v, _ := thrift.GetHeader(ctx, key)
	return v, nil
}

func (h *handler) EchoBag(_ context.Context, bag *hello.Bag) (*hello.Bag, error) { return bag, nil }
