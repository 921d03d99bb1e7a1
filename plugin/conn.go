//go:build cgo

package main

import (
	"errors"
	"sync"
	"syscall"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

var errClosed = errors.New("metaprotocol: connection closed")

// conn is a transport.Conn over one Envoy connection, downstream or upstream.
// Envoy copies written bytes at once and posts the write to the
// connection's worker, so Write and Close never block and are safe from
// any goroutine.
//
// Once Envoy reports the connection closed, detach drops the callback: the
// SDK then lets its filter object go, a finalizer tells Envoy to free its
// side, and no call may reach Envoy through that callback again. The mutex
// makes detach wait for a call in progress.
type conn struct {
	mu      sync.Mutex
	cb      api.ConnectionCallback // nil once detached
	closing bool                   // Close was called
	worker  int32                  // the Envoy worker thread's id (see onWorker)
}

func newConn(cb api.ConnectionCallback) *conn { return &conn{cb: cb} }

// onWorker records the worker the connection's events run on; it is called
// from one of them (Envoy runs every callback of a connection on its
// worker's thread, which is the calling thread during a callback), before
// the engine sees the connection.
func (c *conn) onWorker() { c.worker = int32(syscall.Gettid()) }

// Worker implements transport.Placed.
func (c *conn) Worker() int32 { return c.worker }

// Write sends b. An empty write is skipped: it would cost a call into Envoy
// for nothing.
func (c *conn) Write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cb == nil || c.closing {
		return errClosed
	}
	c.cb.Write(b, false)
	return nil
}

// Close asks Envoy to close the connection, after sending what was written
// when flush is set. Only the first call reaches Envoy.
func (c *conn) Close(flush bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cb == nil || c.closing {
		return
	}
	c.closing = true
	t := api.NoFlush
	if flush {
		t = api.FlushWrite
	}
	c.cb.Close(t)
}

// detach forgets the callback; Envoy reported the connection closed.
func (c *conn) detach() {
	c.mu.Lock()
	c.cb = nil
	c.mu.Unlock()
}
