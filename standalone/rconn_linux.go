//go:build linux

package standalone

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metaproxy/metaproxy/transport"
)

// flushTimeout bounds how long Close(true) waits for a peer to take the
// queued bytes.
const flushTimeout = 5 * time.Second

var errOverLimit = transport.ErrSlowPeer

// rconn is a socket owned by a loop; it implements transport.Conn.
//
// Write sends at once from the caller with a non-blocking write while
// nothing is queued. What the socket does not take is queued, up to maxBuf
// bytes (over that the connection is closed), and the loop flushes it on
// EPOLLOUT; later writes append behind it, so bytes leave in the order the
// Write calls took c.mu.
//
// Only the loop closes the fd, under c.mu, so a writer holding c.mu never
// writes to a reused fd. Close from another goroutine shuts the socket down,
// which wakes the loop to finish it.
type rconn struct {
	loop    *loop
	gen     int32
	maxBuf  int
	onData  func([]byte)
	onClose func(error) // nil: report nothing
	// onReadClosed reports the peer's half-close (FIN); nil: a FIN
	// closes the connection.
	onReadClosed func()
	halfClosed   atomic.Bool
	// dial is the handler of a connect in progress, then nil; loop only.
	dial transport.UpstreamHandler

	closed atomic.Bool // set under mu

	mu      sync.Mutex
	fd      int // -1 once the loop closed it
	out     []byte
	closing bool // close once out is flushed
	timer   *time.Timer
}

func newRconn(l *loop, fd, maxBuf int) *rconn {
	return &rconn{loop: l, fd: fd, maxBuf: maxBuf}
}

// Write implements transport.Conn.
func (c *rconn) Write(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() || c.closing {
		return errClosed
	}
	if len(c.out) > 0 {
		if len(c.out)+len(b) > c.maxBuf {
			c.shutLocked()
			return errOverLimit
		}
		c.out = append(c.out, b...)
		return nil
	}
	n, err := writeFd(c.fd, b)
	if err != nil {
		c.shutLocked()
		return err
	}
	if n < len(b) {
		c.out = append(c.out, b[n:]...)
		if err := c.loop.watch(c, c.readEvents()|syscall.EPOLLOUT); err != nil {
			c.shutLocked()
			return err
		}
		// Off the loop's goroutine the loop may be asleep past the
		// change (see loop.watch); the wake-up makes it poll.
		c.loop.post(nop)
	}
	return nil
}

// readEvents is EPOLLIN until the peer half-closed: a level-triggered
// EPOLLIN on a socket at EOF would fire for ever. Hang-ups and errors are
// reported whatever the mask. c.mu is held or c is not shared.
func (c *rconn) readEvents() uint32 {
	if c.halfClosed.Load() {
		return 0
	}
	return syscall.EPOLLIN
}

// Close implements transport.Conn. Close(false) also cuts short a pending
// Close(true).
func (c *rconn) Close(flush bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() || c.closing && flush {
		return
	}
	if flush && len(c.out) > 0 {
		c.closing = true
		c.timer = time.AfterFunc(flushTimeout, func() { c.Close(false) })
		return
	}
	c.shutLocked()
}

// shutLocked marks c closed and shuts the socket down; the loop sees the
// hang-up and closes the fd. c.mu is held.
func (c *rconn) shutLocked() {
	if c.closed.Load() {
		return
	}
	c.closed.Store(true)
	c.out = nil
	if c.fd >= 0 {
		_ = syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
	}
}

// Worker implements transport.Placed: c's events run on its loop.
func (c *rconn) Worker() int32 { return c.loop.id }

// writeFd writes what the socket takes without waiting.
func writeFd(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := rawWrite(fd, b[n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return n, nil
		case err != nil:
			return n, os.NewSyscallError("write", err)
		case k == 0:
			return n, nil
		}
		n += k
	}
	return n, nil
}
