package standalone

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"github.com/metaproxy/metaproxy/proxy"
)

// Listener serves one proxy.Server on one net.Listener.
type Listener struct {
	srv    *proxy.Server
	ln     net.Listener
	maxBuf int
	log    *slog.Logger

	mu    sync.Mutex
	conns map[*conn]*proxy.Session
	wg    sync.WaitGroup
}

// NewDialer returns the Dialer the standalone host gives to proxy.New.
// maxBuf bounds the bytes waiting to be written on each upstream connection.
func NewDialer(maxBuf int) proxy.Dialer { return dialer{maxBuf: maxBuf} }

// NewListener serves srv on ln once Serve is called. maxBuf bounds the bytes
// waiting to be written to each client.
func NewListener(srv *proxy.Server, ln net.Listener, maxBuf int, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{srv: srv, ln: ln, maxBuf: maxBuf, log: log, conns: map[*conn]*proxy.Session{}}
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Serve accepts connections until the listener is closed.
func (l *Listener) Serve() error {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		c := newConn(nc, l.maxBuf)
		sess := l.srv.NewSession(c, nc.RemoteAddr().String())
		l.mu.Lock()
		l.conns[c] = sess
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			_ = readLoop(nc, sess.OnData)
			sess.OnClose()
			c.Close(false)
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, waits until in-flight requests are answered or
// ctx ends, then closes every connection.
func (l *Listener) Shutdown(ctx context.Context) error {
	_ = l.ln.Close()
	err := l.srv.Drain(ctx)
	l.mu.Lock()
	for _, sess := range l.conns {
		sess.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	l.srv.Close()
	return err
}
