//go:build linux

package standalone

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/transport"
)

func init() {
	hosts = append(hosts, host{name: "reactor", reactor: true, wrap: adopt})
}

// adopt moves nc's socket to a loop; what the peer sends is discarded.
func adopt(t *testing.T, nc net.Conn, maxBuf int) transport.Conn {
	t.Helper()
	fd, err := takeFd(nc)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := loopFor()
	if err != nil {
		t.Fatal(err)
	}
	c := newRconn(lp, fd, maxBuf)
	c.onData = func([]byte) {}
	if err := lp.add(c, syscall.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestReactorDialerRefusesSelfConnect pins reliability defect 2's second
// half: a connect to a loopback port nothing listens on that lands on its
// own source port is a socket connected to itself, holding the port a
// restarted upstream needs. The epoll dialer reports it as a failure
// (transport.ErrSelfConnect) and frees the port. The test forces the case by
// binding the source to the destination.
func TestReactorDialerRefusesSelfConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	out := dialOutcome{connected: make(chan error, 1), failed: make(chan error, 1)}
	reactorDialer{maxBuf: 1 << 20, source: ap}.Dial(ap.String(), out)
	select {
	case err := <-out.failed:
		if !errors.Is(err, transport.ErrSelfConnect) {
			t.Fatalf("dial from %v to itself: %v, want ErrSelfConnect", ap, err)
		}
	case <-out.connected:
		t.Fatalf("dial from %v to itself reported connected", ap)
	case <-time.After(10 * time.Second):
		t.Fatal("no dial outcome")
	}
	// The port is free again for the real upstream (the socket is closed
	// before the failure is reported).
	ln, err = net.Listen("tcp", ap.String())
	if err != nil {
		t.Fatalf("port still held after a self-connect: %v", err)
	}
	ln.Close()
}

// greeted is an upstream handler that records the first bytes it reads.
type greeted struct {
	conn chan transport.Conn
	data chan string
}

func (g greeted) OnConnect(c transport.Conn) { g.conn <- c }
func (g greeted) OnConnectFailure(err error) { g.data <- "connect failed: " + err.Error() }
func (g greeted) OnData(b []byte)            { g.data <- string(b) }
func (g greeted) OnClose(error)              {}

// TestReactorDialServerSpeaksFirst pins the hang CI found with MariaDB: a
// server that greets its client at once (MySQL, Redis's sentinel hello,
// SMTP) had sent its greeting by the time the loop saw the connect
// complete; switching the socket from EPOLLOUT to EPOLLIN made no epoll
// edge, the loop skipped its last poll, and the greeting waited for ever.
// The test makes that order certain: the loop is busy until the server has
// written.
func TestReactorDialServerSpeaksFirst(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrote, done, served := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("hello"))
			defer c.Close()
		}
		close(wrote)
		<-done
	}()
	defer func() { close(done); <-served }()
	lp, err := loopFor()
	if err != nil {
		t.Fatal(err)
	}
	lp.post(func() { <-wrote; time.Sleep(10 * time.Millisecond) })
	g := greeted{conn: make(chan transport.Conn, 1), data: make(chan string, 4)}
	reactorDialer{maxBuf: 1 << 20}.dialOn(lp, ln.Addr().String(), g)
	defer func() {
		select {
		case c := <-g.conn:
			c.Close(false)
		default:
		}
	}()
	select {
	case got := <-g.data:
		if got != "hello" {
			t.Fatalf("read %q, want the server's greeting", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server's greeting never reached the handler")
	}
}
