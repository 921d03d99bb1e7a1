package kvpeer

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server answers KVP1 requests. A request's "op" pair says what to do:
// "hello" (or none): pairs reply = "Hello <name> from <tag>" and
// served-by = tag; "echo": the request's pairs back, and served-by;
// "count": oneways = the oneway requests received so far; "fail": status
// StatusAppError with error = "failed: <name>". Heartbeat
// requests are answered, oneway requests counted.
type Server struct {
	Tag     string
	ln      net.Listener
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]bool
	oneways atomic.Int64
}

// Serve answers the connections ln accepts until Close.
func Serve(ln net.Listener, tag string) *Server {
	s := &Server{Tag: tag, ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Oneways is the number of oneway requests received.
func (s *Server) Oneways() int64 { return s.oneways.Load() }

// Close stops the server, closes its connections and waits for them.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Answer returns the server's answer to request f.
func (s *Server) Answer(f Frame) Frame {
	r := Frame{Version: f.Version, Flags: FlagResponse, ID: f.ID}
	name, _ := f.Get("name")
	switch op, _ := f.Get("op"); op {
	case "", "hello":
		r.Pairs = []Pair{{"reply", "Hello " + name + " from " + s.Tag}, {"served-by", s.Tag}}
	case "echo":
		r.Pairs = append(append(r.Pairs, f.Pairs...), Pair{"served-by", s.Tag})
	case "count":
		r.Pairs = []Pair{{"oneways", strconv.FormatInt(s.Oneways(), 10)}, {"served-by", s.Tag}}
	case "fail":
		r.Status, r.Pairs = StatusAppError, []Pair{{"error", "failed: " + name}}
	default:
		r.Status, r.Pairs = StatusBadRequest, []Pair{{"error", "unknown op " + op}}
	}
	return r
}

func (s *Server) serve(c net.Conn) {
	r := bufio.NewReader(c)
	var out []byte
	for {
		f, err := ReadFrame(r)
		if err != nil {
			return
		}
		var reply Frame
		switch {
		case f.Flags&FlagHeartbeat != 0 && f.Flags&FlagResponse == 0:
			reply = Frame{Version: f.Version, Flags: FlagHeartbeat | FlagResponse, ID: f.ID}
		case f.Flags&FlagOneway != 0:
			s.oneways.Add(1)
			continue
		case f.Flags&FlagRequest != 0:
			reply = s.Answer(f)
		default:
			continue
		}
		if out, err = reply.Append(out[:0]); err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// Client is a multiplexed KVP1 client: calls from many goroutines share
// its connection and are matched to their answers by id.
type Client struct {
	// Timeout bounds each call (10 s when 0).
	Timeout time.Duration
	conn    net.Conn
	wmu     sync.Mutex
	mu      sync.Mutex
	pending map[uint32]chan Frame
	next    uint32
	err     error
	done    chan struct{}
}

// ErrClosed is returned by calls on a client whose connection ended.
var ErrClosed = errors.New("kvpeer: connection closed")

// Dial connects a client to addr.
func Dial(addr string) (*Client, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, pending: map[uint32]chan Frame{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *Client) read() {
	defer close(c.done)
	r := bufio.NewReader(c.conn)
	for {
		f, err := ReadFrame(r)
		c.mu.Lock()
		if err != nil {
			c.err = fmt.Errorf("%w: %v", ErrClosed, err)
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		ch := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// send writes f with a fresh id; wait is the channel of its answer.
func (c *Client) send(f Frame, answered bool) (uint32, chan Frame, error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, nil, c.err
	}
	c.next++
	f.ID = c.next
	var ch chan Frame
	if answered {
		ch = make(chan Frame, 1)
		c.pending[f.ID] = ch
	}
	c.mu.Unlock()
	b, err := f.Append(nil)
	if err == nil {
		c.wmu.Lock()
		_, err = c.conn.Write(b)
		c.wmu.Unlock()
	}
	return f.ID, ch, err
}

func (c *Client) roundTrip(f Frame) (Frame, error) {
	id, ch, err := c.send(f, true)
	if err != nil {
		return Frame{}, err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r, ok := <-ch:
		if !ok {
			return Frame{}, c.closedErr()
		}
		return r, nil
	case <-t.C:
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return Frame{}, fmt.Errorf("kvpeer: call %d: no answer in %v", id, timeout)
	}
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Call sends a request with pairs and returns its answer.
func (c *Client) Call(pairs ...Pair) (Frame, error) {
	return c.roundTrip(Frame{Flags: FlagRequest, Pairs: pairs})
}

// Oneway sends a oneway request.
func (c *Client) Oneway(pairs ...Pair) error {
	_, _, err := c.send(Frame{Flags: FlagRequest | FlagOneway, Pairs: pairs}, false)
	return err
}

// Heartbeat sends a heartbeat request and returns its answer.
func (c *Client) Heartbeat() (Frame, error) {
	return c.roundTrip(Frame{Flags: FlagHeartbeat})
}

// Close closes the connection and waits for the reader.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}
