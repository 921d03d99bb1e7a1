package standalone

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/proxy"
	"github.com/metaproxy/metaproxy/transport"
)

// Listener serves one proxy.Server on one net.Listener.
type Listener struct {
	srv     *proxy.Server
	ln      net.Listener
	maxBuf  int
	log     *slog.Logger
	reactor bool // serve on the epoll loops (reactor_linux.go)

	mu       sync.Mutex
	sessions map[*proxy.Session]struct{}
	wg       sync.WaitGroup
}

// NewDialer returns the Dialer the standalone host gives to proxy.New.
// maxBuf bounds the bytes waiting to be written on each upstream connection.
// On Linux it connects on the epoll loops unless METAPROXY_REACTOR=0.
func NewDialer(maxBuf int) transport.Dialer { return newDialer(maxBuf, defaultReactor) }

func newDialer(maxBuf int, reactor bool) transport.Dialer {
	if reactor {
		return newReactorDialer(maxBuf)
	}
	return dialer{maxBuf: maxBuf}
}

// NewListener serves srv on ln once Serve is called. maxBuf bounds the bytes
// waiting to be written to each client. On Linux it serves on the epoll
// loops unless METAPROXY_REACTOR=0.
func NewListener(srv *proxy.Server, ln net.Listener, maxBuf int, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{srv: srv, ln: ln, maxBuf: maxBuf, log: log, reactor: defaultReactor, sessions: map[*proxy.Session]struct{}{}}
}

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Accept back-off: after a failed accept (out of file descriptors, say)
// the listener waits acceptBackoffMin, doubling up to acceptBackoffMax
// while accepts keep failing, and logs at most once per acceptLogEvery.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	acceptLogEvery   = 5 * time.Second
)

// Serve accepts connections until the listener is closed. An accept error
// (or an accepted connection that cannot be taken for lack of file
// descriptors) is never fatal: existing connections keep being served while
// accepting backs off.
func (l *Listener) Serve() error {
	start := l.startGoroutine
	if l.reactor {
		start = l.startReactor
	}
	var wait time.Duration
	var acceptLog limitedLog
	for {
		nc, err := l.ln.Accept()
		if err == nil && !l.srv.Admit() {
			nc.Close() // over max_connections
			continue
		}
		if err == nil {
			if err = start(nc); err == nil {
				wait = 0
				continue
			}
		} else if errors.Is(err, net.ErrClosed) {
			return nil
		}
		l.srv.Stats().DownstreamCxAcceptError.Add(1)
		acceptLog.log(l.log, "accept failed; backing off", "err", err)
		wait = min(max(2*wait, acceptBackoffMin), acceptBackoffMax)
		time.Sleep(wait)
	}
}

// limitedLog logs one line per acceptLogEvery with the number of events
// since the last line: a flood of failures does not flood the log. Serve's
// goroutine alone uses it.
type limitedLog struct {
	last    time.Time
	skipped int
}

func (r *limitedLog) log(log *slog.Logger, msg string, args ...any) {
	now := time.Now()
	if now.Sub(r.last) < acceptLogEvery {
		r.skipped++
		return
	}
	n := r.skipped + 1
	r.last, r.skipped = now, 0
	log.Error(msg, append(args, "events", n)...)
}

// startGoroutine serves nc with one read goroutine.
func (l *Listener) startGoroutine(nc net.Conn) error {
	c := newConn(nc, l.maxBuf)
	sess := l.srv.NewSession(c, nc.RemoteAddr().String())
	l.track(sess)
	go func() {
		if err := readLoop(nc, sess.OnData); err == io.EOF {
			// Half-closed: the session answers what is in flight, then
			// closes the connection (or a write fails first).
			sess.OnReadClosed()
			<-c.done
		}
		sess.OnClose()
		c.Close(false)
		l.untrack(sess)
	}()
	return nil
}

// track counts sess among the sessions Shutdown closes and waits for.
func (l *Listener) track(sess *proxy.Session) {
	l.mu.Lock()
	l.sessions[sess] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
}

// untrack reports that sess has ended.
func (l *Listener) untrack(sess *proxy.Session) {
	l.mu.Lock()
	delete(l.sessions, sess)
	l.mu.Unlock()
	l.wg.Done()
}

// Shutdown stops accepting, closes each connection once it has no request
// in flight, waits until every request is answered or ctx ends, then closes
// the connections left.
func (l *Listener) Shutdown(ctx context.Context) error {
	_ = l.ln.Close()
	l.mu.Lock()
	for sess := range l.sessions {
		sess.Drain()
	}
	l.mu.Unlock()
	err := l.srv.Drain(ctx)
	l.mu.Lock()
	for sess := range l.sessions {
		sess.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
	l.srv.Close()
	return err
}
