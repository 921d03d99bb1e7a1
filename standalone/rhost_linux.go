//go:build linux

package standalone

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/metaproxy/metaproxy/transport"
)

// dialTimeout bounds a connect, as net.DialTimeout does in the goroutine
// host; the engine usually gives up sooner.
const dialTimeout = 30 * time.Second

// startReactor hands nc's socket to a loop and starts its session. The
// socket leaves Go's netpoller: the loop owns a duplicate of the fd and nc
// is closed. Sockets that cannot be taken keep a goroutine.
func (l *Listener) startReactor(nc net.Conn) error {
	remote := nc.RemoteAddr().String()
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	fd, err := takeFd(nc)
	if err == errNotSyscallConn {
		return l.startGoroutine(nc)
	}
	if err != nil {
		return fmt.Errorf("closing accepted connection from %s: %w", remote, err)
	}
	lp, err := loopFor()
	if err != nil {
		syscall.Close(fd)
		return fmt.Errorf("closing accepted connection from %s: %w", remote, err)
	}
	c := newRconn(lp, fd, l.maxBuf)
	sess := l.srv.NewSession(c, remote)
	l.track(sess)
	c.onData, c.onReadClosed = sess.OnData, sess.OnReadClosed
	c.onClose = func(error) {
		sess.OnClose()
		l.untrack(sess)
	}
	if err := lp.add(c, syscall.EPOLLIN); err != nil {
		syscall.Close(fd)
		c.onClose(err)
		return err
	}
	return nil
}

var errNotSyscallConn = errors.New("connection has no file descriptor")

// takeFd duplicates nc's fd (non-blocking, close-on-exec) and closes nc,
// which removes the original from Go's netpoller. nc is closed on error
// too, except when it has no fd.
func takeFd(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errNotSyscallConn
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, errNotSyscallConn
	}
	fd := -1
	var derr error
	cerr := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			derr = os.NewSyscallError("fcntl", e)
			return
		}
		fd = int(r)
	})
	_ = nc.Close()
	if cerr != nil {
		derr = cerr
	}
	if derr != nil && fd >= 0 {
		syscall.Close(fd)
		fd = -1
	}
	return fd, derr
}

// reactorDialer implements transport.Dialer with non-blocking connects
// completed by the loops.
type reactorDialer struct {
	maxBuf int
	source netip.AddrPort // bind before connecting when valid
}

func newReactorDialer(maxBuf int) transport.Dialer { return reactorDialer{maxBuf: maxBuf} }

// Dial implements transport.Dialer. The outcome is reported from the loop that
// owns the connection, never from inside Dial.
func (d reactorDialer) Dial(addr string, h transport.UpstreamHandler) {
	lp, err := loopFor()
	if err != nil {
		go h.OnConnectFailure(err)
		return
	}
	d.dialOn(lp, addr, h)
}

// dialOn dials addr from loop lp.
func (d reactorDialer) dialOn(lp *loop, addr string, h transport.UpstreamHandler) {
	fd, err := connect(addr, d.source)
	if err != nil {
		lp.post(func() { h.OnConnectFailure(err) })
		return
	}
	c := newRconn(lp, fd, d.maxBuf)
	c.dial, c.onData, c.onClose = h, h.OnData, h.OnClose
	c.timer = time.AfterFunc(dialTimeout, func() {
		lp.post(func() { lp.dialFailed(c, fmt.Errorf("dial tcp %s: i/o timeout", addr)) })
	})
	if err := lp.add(c, syscall.EPOLLOUT); err != nil {
		c.timer.Stop()
		syscall.Close(fd)
		lp.post(func() { h.OnConnectFailure(err) })
	}
}

// connect starts a non-blocking connect to the literal "ip:port" addr,
// from source if it is valid.
func connect(addr string, source netip.AddrPort) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return -1, fmt.Errorf("dial tcp %s: not a literal ip:port", addr)
	}
	ip := ap.Addr().Unmap()
	family := syscall.AF_INET
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	if !ip.Is4() {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if source.IsValid() {
		if err := bind(fd, source); err != nil {
			syscall.Close(fd)
			return -1, err
		}
	}
	for {
		err = syscall.Connect(fd, sa)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil && err != syscall.EINPROGRESS {
		syscall.Close(fd)
		return -1, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: os.NewSyscallError("connect", err)}
	}
	return fd, nil
}

func bind(fd int, ap netip.AddrPort) error {
	var sa syscall.Sockaddr = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	if !ap.Addr().Unmap().Is4() {
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	return os.NewSyscallError("bind", syscall.Bind(fd, sa))
}

// connected completes the connect of c on EPOLLOUT.
func (l *loop) connected(c *rconn) {
	h := c.dial
	errno, err := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err == nil && errno != 0 {
		err = syscall.Errno(errno)
	}
	if err == nil && selfConnected(c.fd) {
		// Go's own dialer checks this too: a connect to a loopback port
		// nothing listens on can pick that very port as its source.
		l.dialFailed(c, &net.OpError{Op: "dial", Net: "tcp", Err: transport.ErrSelfConnect})
		return
	}
	if err == nil {
		c.mu.Lock()
		c.dial = nil
		c.timer.Stop()
		c.timer = nil
		err = l.watch(c, syscall.EPOLLIN)
		c.mu.Unlock()
		if err == nil {
			h.OnConnect(c)
			return
		}
		c.dial = h
	}
	l.dialFailed(c, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)})
}

// selfConnected reports whether the socket fd is connected to itself.
func selfConnected(fd int) bool {
	local, err := syscall.Getsockname(fd)
	if err != nil {
		return false
	}
	peer, err := syscall.Getpeername(fd)
	if err != nil {
		return false
	}
	switch l := local.(type) {
	case *syscall.SockaddrInet4:
		p, ok := peer.(*syscall.SockaddrInet4)
		return ok && l.Port == p.Port && l.Addr == p.Addr
	case *syscall.SockaddrInet6:
		p, ok := peer.(*syscall.SockaddrInet6)
		return ok && l.Port == p.Port && l.Addr == p.Addr
	}
	return false
}

// dialFailed abandons the connect of c, unless it completed already.
func (l *loop) dialFailed(c *rconn, err error) {
	h := c.dial
	if h == nil {
		return
	}
	c.dial, c.onClose = nil, nil
	l.finish(c, nil)
	h.OnConnectFailure(err)
}
