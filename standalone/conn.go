// Package standalone hosts the engine on Go's net package: it accepts
// downstream connections, dials upstream ones and feeds both to a
// proxy.Server. It is what `metaproxy -c bootstrap.yaml` runs.
package standalone

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/metaproxy/metaproxy/transport"
)

const readChunk = 64 << 10

// conn adapts a net.Conn to transport.Conn. Write never blocks on the peer:
//
//   - when nobody is writing, the caller writes at once with a non-blocking
//     system call (the common case: no goroutine switch);
//   - while a write is in progress, frames are appended to a buffer that
//     the writer drains in its next system call (batching under load);
//   - when the socket is full, the rest goes to a writer goroutine that
//     waits for the peer, so a slow peer only ever stalls its own writes,
//     up to maxBuf bytes, after which the connection is closed.
type conn struct {
	c      net.Conn
	raw    syscall.RawConn // nil when c is not a *net.TCPConn
	maxBuf int

	mu      sync.Mutex
	buf     []byte
	spare   []byte
	busy    bool // a goroutine is writing to the socket
	closing bool // close once buf is flushed
	closed  bool
	wake    chan struct{}
	done    chan struct{} // closed by shut
}

var errClosed = errors.New("connection closed")

func newConn(c net.Conn, maxBuf int) *conn {
	w := &conn{c: c, maxBuf: maxBuf, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		w.raw, _ = tc.SyscallConn()
	}
	go w.writeLoop()
	return w
}

// Write implements transport.Conn.
func (w *conn) Write(b []byte) error {
	w.mu.Lock()
	if w.closed || w.closing {
		w.mu.Unlock()
		return errClosed
	}
	if w.busy || w.raw == nil {
		if len(w.buf)+len(b) > w.maxBuf {
			w.mu.Unlock()
			w.Close(false)
			return transport.ErrSlowPeer
		}
		w.buf = append(w.buf, b...)
		if !w.busy {
			w.busy = true
			w.mu.Unlock()
			w.kick()
			return nil
		}
		w.mu.Unlock()
		return nil
	}
	w.busy = true
	w.mu.Unlock()
	for {
		n, err := w.tryWrite(b)
		if err != nil {
			w.shut()
			return err
		}
		w.mu.Lock()
		if n < len(b) {
			// The socket is full: queue the rest ahead of what others
			// appended meanwhile and let the writer goroutine wait.
			rest := append(w.spare[:0], b[n:]...)
			w.buf, w.spare = append(rest, w.buf...), w.buf[:0]
			w.mu.Unlock()
			w.kick()
			return nil
		}
		if len(w.buf) == 0 {
			w.busy = false
			closing := w.closing
			w.mu.Unlock()
			if closing {
				w.shut()
			}
			return nil
		}
		// Others appended while we wrote: send their frames in one go.
		b = w.buf
		w.buf = w.spare[:0]
		w.spare = b[:0]
		w.mu.Unlock()
	}
}

// tryWrite writes what the socket takes without waiting.
func (w *conn) tryWrite(b []byte) (int, error) {
	var n int
	var werr error
	err := w.raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, err := syscall.Write(int(fd), b[n:])
			if k > 0 {
				n += k
			}
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true
			case err != nil:
				werr = err
				return true
			case k == 0:
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}

func (w *conn) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// writeLoop drains the buffer with blocking writes once Write found the
// socket full. It owns the socket while w.busy is set by a kick.
func (w *conn) writeLoop() {
	for {
		select {
		case <-w.wake:
		case <-w.done:
			return
		}
		for {
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				return
			}
			if len(w.buf) == 0 {
				w.busy = false
				closing := w.closing
				w.mu.Unlock()
				if closing {
					w.shut()
					return
				}
				break
			}
			out := w.buf
			w.buf = w.spare[:0]
			w.mu.Unlock()
			_, err := w.c.Write(out)
			w.mu.Lock()
			w.spare = out[:0]
			if cap(w.spare) > 1<<20 {
				w.spare = nil
			}
			w.mu.Unlock()
			if err != nil {
				w.shut()
				return
			}
		}
	}
}

func (w *conn) shut() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.buf = nil
	w.mu.Unlock()
	_ = w.c.Close()
	close(w.done)
}

// Close implements transport.Conn.
func (w *conn) Close(flush bool) {
	w.mu.Lock()
	if w.closed || w.closing {
		w.mu.Unlock()
		return
	}
	if flush && (w.busy || len(w.buf) > 0) {
		// The current writer closes the socket once the buffer is empty.
		w.closing = true
		w.mu.Unlock()
		_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		return
	}
	w.mu.Unlock()
	w.shut()
}

// dialer implements transport.Dialer with net.Dialer.
type dialer struct {
	maxBuf int
}

// Dial implements transport.Dialer.
func (d dialer) Dial(addr string, h transport.UpstreamHandler) {
	go func() {
		nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			h.OnConnectFailure(err)
			return
		}
		c := newConn(nc, d.maxBuf)
		h.OnConnect(c)
		_ = readLoop(nc, h.OnData)
		c.Close(false)
		h.OnClose(nil)
	}()
}

// readLoop feeds everything read from nc to onData until EOF or error.
func readLoop(nc net.Conn, onData func([]byte)) error {
	buf := make([]byte, readChunk)
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			onData(buf[:n])
		}
		if err != nil {
			return err
		}
	}
}
