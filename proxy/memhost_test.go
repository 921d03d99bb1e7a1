package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/transport"
)

// kvCodec is a minimal length-prefixed protocol used to test the engine in
// isolation: [len u32][kind u8][id u64][k=v;k=v...]. Kind 0 request, 1
// response OK, 2 response error, 3 oneway, 4 heartbeat request, 5 heartbeat
// response, 6 response server failure.
type kvCodec struct{}

func kvFrame(kind byte, id uint64, body string) []byte {
	b := make([]byte, 13, 13+len(body))
	binary.BigEndian.PutUint32(b, uint32(9+len(body)))
	b[4] = kind
	binary.BigEndian.PutUint64(b[5:], id)
	return append(b, body...)
}

func (kvCodec) Split(buf []byte) (int, error) {
	if len(buf) < 4 {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint32(buf))
	if n < 9 || n > 1<<20 {
		return 0, codec.Malformed("kv", "bad length %d", n)
	}
	if len(buf) < 4+n {
		return 0, nil
	}
	return 4 + n, nil
}

func (kvCodec) Decode(f []byte, m *codec.Message) error {
	m.ID = binary.BigEndian.Uint64(f[5:])
	switch f[4] {
	case 0:
		m.Kind = codec.KindRequest
	case 1, 2:
		m.Kind = codec.KindResponse
		if f[4] == 2 {
			m.Status = codec.StatusError
		}
	case 3:
		m.Kind = codec.KindOneway
	case 6:
		m.Kind, m.Status = codec.KindResponse, codec.StatusServerFailure
	case 4, 5:
		m.Kind, m.HeartbeatRequest = codec.KindHeartbeat, f[4] == 4
	case 7, 11: // a stream's INIT; 11 a refused one (stream_test.go)
		m.Kind, m.StreamID = codec.KindStreamInit, m.ID
		if f[4] == 11 {
			m.Status = codec.StatusServerFailure
		}
	case 8:
		m.Kind, m.StreamID = codec.KindStreamData, m.ID
	case 9, 10: // a stream's CLOSE; 10 a reset
		m.Kind, m.StreamID = codec.KindStreamClose, m.ID
		if f[4] == 10 {
			m.Status = codec.StatusServerFailure
		}
	default:
		return codec.Malformed("kv", "bad kind %d", f[4])
	}
	for _, kv := range strings.Split(string(f[13:]), ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m.Meta.Set(k, v)
		}
	}
	return nil
}

func (kvCodec) Encode(dst []byte, m *codec.Message, e *codec.Edit) ([]byte, error) {
	start := len(dst)
	dst = append(dst, m.Frame...)
	if e == nil {
		return dst, nil
	}
	if e.SetID {
		binary.BigEndian.PutUint64(dst[start+5:], e.ID)
	}
	for _, h := range e.Headers {
		dst = append(dst, ";"+h.Key+"="+h.Value...)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

func (kvCodec) ErrorReply(dst []byte, req *codec.Message, e *codec.Error) []byte {
	switch req.Kind {
	case codec.KindStreamInit:
		return append(dst, kvFrame(11, req.StreamID, "error="+e.Type.String())...)
	case codec.KindStreamData, codec.KindStreamClose:
		return append(dst, kvFrame(10, req.StreamID, "error="+e.Type.String())...)
	}
	return append(dst, kvFrame(2, req.ID, "error="+e.Type.String()+";msg="+e.Message)...)
}

func (kvCodec) HeartbeatReply(dst []byte, req *codec.Message) []byte {
	return append(dst, kvFrame(5, req.ID, "")...)
}

// memConn is an in-memory transport.Conn: what the engine writes arrives in out.
type memConn struct {
	mu       sync.Mutex
	writes   int
	out      bytes.Buffer
	closed   bool
	onW      func([]byte)
	onClose  func()
	notify   chan struct{}
	writeErr error // Write fails with it (a host that cut the peer off)
	worker   int32 // what Worker reports (transport.Placed); 0 says none
}

func (c *memConn) Worker() int32 { return c.worker }

func newMemConn() *memConn { return &memConn{notify: make(chan struct{}, 1)} }

func (c *memConn) Write(b []byte) error {
	if len(b) == 0 {
		panic("empty write")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("closed")
	}
	if c.writeErr != nil {
		c.mu.Unlock()
		return c.writeErr
	}
	c.out.Write(b)
	c.writes++
	onW := c.onW
	c.mu.Unlock()
	if onW != nil {
		onW(append([]byte(nil), b...))
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

func (c *memConn) Close(bool) {
	c.mu.Lock()
	c.closed = true
	onClose := c.onClose
	c.mu.Unlock()
	if onClose != nil {
		onClose()
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *memConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// frames decodes what was written so far into messages.
func (c *memConn) frames(t *testing.T) []codec.Message {
	t.Helper()
	c.mu.Lock()
	b := append([]byte(nil), c.out.Bytes()...)
	c.mu.Unlock()
	var out []codec.Message
	var cd kvCodec
	for len(b) > 0 {
		n, err := cd.Split(b)
		if err != nil || n == 0 {
			t.Fatalf("downstream got a bad frame: n=%d err=%v", n, err)
		}
		var m codec.Message
		m.Frame = b[:n]
		if err := cd.Decode(b[:n], &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		b = b[n:]
	}
	return out
}

// waitFrames waits until n frames were written to c.
func (c *memConn) waitFrames(t *testing.T, n int) []codec.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		if fs := c.frames(t); len(fs) >= n {
			return fs
		}
		select {
		case <-c.notify:
		case <-deadline:
			t.Fatalf("timed out waiting for %d frames, have %d", n, len(c.frames(t)))
		}
	}
}

// memServer is an upstream that answers kv requests with handler.
type memServer struct {
	mu      sync.Mutex
	handler func(req codec.Message) []byte // nil reply = no answer
	// streams answers stream frames (stream_test.go); nil reply = none.
	streams func(m codec.Message) []byte
	refuse  bool
	conns   []*memUpstream
	seen    []codec.Message
	seenOn  []*memUpstream // the connection each seen message came on
}

type memUpstream struct {
	srv  *memServer
	h    transport.UpstreamHandler
	down *memConn
	buf  []byte
}

// memDialer dials memServers by address.
type memDialer struct {
	mu       sync.Mutex
	servers  map[string]*memServer
	dials    int
	failWith error             // every dial fails with it
	workerOf func(n int) int32 // the worker of the nth connection dialed (from 1); nil: 0
}

func (d *memDialer) Dial(addr string, h transport.UpstreamHandler) {
	d.mu.Lock()
	d.dials++
	s := d.servers[addr]
	failWith := d.failWith
	var worker int32
	if d.workerOf != nil {
		worker = d.workerOf(d.dials)
	}
	d.mu.Unlock()
	go func() {
		if failWith != nil {
			h.OnConnectFailure(failWith)
			return
		}
		if s != nil {
			s.mu.Lock()
		}
		refused := s == nil || s.refuse
		if s != nil {
			s.mu.Unlock()
		}
		if refused {
			h.OnConnectFailure(errors.New("connection refused"))
			return
		}
		u := &memUpstream{srv: s, h: h}
		c := newMemConn()
		c.worker = worker
		in := make(chan []byte, 1024)
		done := make(chan struct{})
		c.onClose = sync.OnceFunc(func() { close(done) })
		go func() { // deliver responses in order, one at a time
			for {
				select {
				case b := <-in:
					h.OnData(b)
				case <-done:
					return
				}
			}
		}()
		var umu sync.Mutex
		c.onW = func(b []byte) {
			umu.Lock()
			defer umu.Unlock()
			u.buf = append(u.buf, b...)
			var cd kvCodec
			for {
				n, err := cd.Split(u.buf)
				if err != nil || n == 0 {
					return
				}
				var m codec.Message
				f := append([]byte(nil), u.buf[:n]...)
				m.Frame = f
				_ = cd.Decode(f, &m)
				u.buf = u.buf[n:]
				s.mu.Lock()
				s.seen = append(s.seen, m)
				s.seenOn = append(s.seenOn, u)
				hd := s.handler
				if m.StreamID != 0 {
					hd = s.streams
				}
				s.mu.Unlock()
				if (m.Kind == codec.KindRequest || m.StreamID != 0) && hd != nil {
					if r := hd(m); r != nil {
						in <- r
					}
				}
			}
		}
		u.down = c
		s.mu.Lock()
		s.conns = append(s.conns, u)
		s.mu.Unlock()
		h.OnConnect(c)
	}()
}

// kill closes every connection of s from the server side.
func (s *memServer) kill() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, u := range conns {
		u.down.Close(false)
		u.h.OnClose(errors.New("reset by peer"))
	}
}

func echoHandler(tag string) func(codec.Message) []byte {
	return func(m codec.Message) []byte {
		body := fmt.Sprintf("from=%s;method=%s", tag, m.Meta.Value("method"))
		for _, kv := range m.Meta.All() {
			if strings.HasPrefix(kv.Key, "x-") {
				body += ";" + kv.Key + "=" + kv.Value
			}
		}
		return kvFrame(1, m.ID, body)
	}
}
