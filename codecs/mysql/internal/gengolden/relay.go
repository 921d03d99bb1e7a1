package main

import (
	"bytes"
	"io"
	"net"
	"sync"
	"time"
)

// relay forwards connections to a server and records their bytes. With
// handshake set, it runs that on each connection first (a proxy's
// connection phase) and relays the rest.
type relay struct {
	l         net.Listener
	to        string
	handshake func(client, server net.Conn, rec *recording) error
	wg        sync.WaitGroup
	mu        sync.Mutex
	recs      []*recording
}

// recording is what one connection carried: from the client and to it
// (down), and, for a proxy, to the server and from it (up).
type recording struct {
	fromClient, toClient, toServer, fromServer bytes.Buffer
	err                                        error
}

func newRelay(to string) *relay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	r := &relay{l: l, to: to}
	r.wg.Add(1)
	go r.accept()
	return r
}

func (r *relay) addr() string { return r.l.Addr().String() }

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.serve(c)
	}
}

// serve relays one connection until both sides are done.
func (r *relay) serve(c net.Conn) {
	defer r.wg.Done()
	defer c.Close()
	rec := &recording{}
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	s, err := net.Dial("tcp", r.to)
	check(err)
	defer s.Close()
	if r.handshake != nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		if rec.err = r.handshake(c, s, rec); rec.err != nil {
			return
		}
		_ = c.SetDeadline(time.Time{})
		_ = s.SetDeadline(time.Time{})
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.MultiWriter(c, &rec.toClient, &rec.fromServer), s)
		_ = c.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(io.MultiWriter(s, &rec.fromClient, &rec.toServer), c)
	_ = s.(*net.TCPConn).CloseWrite()
	<-done
}

// close stops the relay once its connections are done and returns them.
func (r *relay) close() []*recording {
	r.l.Close()
	r.wg.Wait()
	return r.recs
}

// one returns the only recording of a relay that saw one connection.
func (r *relay) one(name string) *recording {
	recs := r.close()
	if len(recs) != 1 {
		fatalf("%s: %d connections, want 1", name, len(recs))
	}
	return recs[0]
}
