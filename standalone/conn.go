// Package standalone hosts the engine on Go's net package: it accepts
// downstream connections, dials upstream ones and feeds both to a
// proxy.Server. It is what `metaproxy -c bootstrap.yaml` runs.
package standalone

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/proxy"
)

const readChunk = 64 << 10

// conn adapts a net.Conn to proxy.Conn. Writes never block the caller: they
// are appended to a buffer that one writer goroutine flushes, so all the
// frames produced while a write is in progress leave in the next single
// system call (batching), and a slow peer only ever stalls its own writer.
type conn struct {
	c      net.Conn
	maxBuf int

	mu      sync.Mutex
	buf     []byte
	spare   []byte
	closing bool // close after flushing
	closed  bool
	wake    chan struct{}
	done    chan struct{}
}

var errClosed = errors.New("connection closed")

func newConn(c net.Conn, maxBuf int) *conn {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	w := &conn{c: c, maxBuf: maxBuf, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.writeLoop()
	return w
}

// Write implements proxy.Conn.
func (w *conn) Write(b []byte) error {
	w.mu.Lock()
	if w.closed || w.closing {
		w.mu.Unlock()
		return errClosed
	}
	if len(w.buf)+len(b) > w.maxBuf {
		w.mu.Unlock()
		w.Close(false)
		return errors.New("write buffer over the limit: peer too slow")
	}
	w.buf = append(w.buf, b...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

func (w *conn) writeLoop() {
	defer close(w.done)
	for range w.wake {
		for {
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				return
			}
			if len(w.buf) == 0 {
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
	w.closed = true
	w.buf = nil
	w.mu.Unlock()
	_ = w.c.Close()
}

// Close implements proxy.Conn.
func (w *conn) Close(flush bool) {
	w.mu.Lock()
	if w.closed || w.closing {
		w.mu.Unlock()
		return
	}
	if flush && len(w.buf) > 0 {
		w.closing = true
		w.mu.Unlock()
		// Bound the time a flush may take.
		_ = w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return
	}
	w.mu.Unlock()
	w.shut()
}

// dialer implements proxy.Dialer with net.Dialer.
type dialer struct {
	maxBuf int
}

// Dial implements proxy.Dialer.
func (d dialer) Dial(addr string, h proxy.UpstreamHandler) {
	go func() {
		nc, err := net.DialTimeout("tcp", addr, 30*time.Second)
		if err != nil {
			h.OnConnectFailure(err)
			return
		}
		c := newConn(nc, d.maxBuf)
		h.OnConnect(c)
		readLoop(nc, h.OnData)
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
