package rawdubbo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned for calls pending or started on a closed connection.
var ErrClosed = errors.New("rawdubbo: connection closed")

// Conn is one client connection that multiplexes concurrent calls by request
// id, as Dubbo clients do. It is safe for concurrent use.
type Conn struct {
	nc     net.Conn
	nextID atomic.Int64

	wmu sync.Mutex // serialises writes so frames never interleave

	mu      sync.Mutex
	pending map[int64]chan Reply
	stray   []int64 // ids of responses nobody waited for
	err     error   // why the read loop ended
	done    chan struct{}
}

// Dial connects to addr ("host:port").
func Dial(addr string, timeout time.Duration) (*Conn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, pending: make(map[int64]chan Reply), done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// LocalAddr returns the client side address of the connection.
func (c *Conn) LocalAddr() string { return c.nc.LocalAddr().String() }

// Close closes the connection; pending calls fail with ErrClosed.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseWrite half-closes the connection (sends FIN); replies can still be
// read.
func (c *Conn) CloseWrite() error {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		return tc.CloseWrite()
	}
	return fmt.Errorf("rawdubbo: %T cannot half-close", c.nc)
}

// Done is closed once the connection has been closed by either side.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (io.EOF for a clean remote close),
// or nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stray returns the ids of responses that arrived for no pending call:
// answers to oneway calls, duplicates, or answers meant for another
// connection.
func (c *Conn) Stray() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.stray...)
}

// NextID reserves a fresh request id.
func (c *Conn) NextID() int64 { return c.nextID.Add(1) }

// Call sends c and waits for its reply, the connection's end or ctx's end.
func (c *Conn) Call(ctx context.Context, call Call) (Reply, error) {
	if call.Oneway {
		return Reply{}, errors.New("rawdubbo: Call with a oneway request; use Send")
	}
	id := c.NextID()
	frame, err := EncodeRequest(id, call)
	if err != nil {
		return Reply{}, err
	}
	return c.RoundTrip(ctx, id, frame, nil)
}

// Heartbeat sends a heartbeat request and waits for its answer.
func (c *Conn) Heartbeat(ctx context.Context) (Reply, error) {
	id := c.NextID()
	frame, err := EncodeHeartbeat(id)
	if err != nil {
		return Reply{}, err
	}
	return c.RoundTrip(ctx, id, frame, nil)
}

// Send sends a oneway call; no reply is expected.
func (c *Conn) Send(call Call) error {
	call.Oneway = true
	frame, err := EncodeRequest(c.NextID(), call)
	if err != nil {
		return err
	}
	return c.Write(frame)
}

// RoundTrip registers id, writes frame (which must carry id) and waits for
// the response with that id. If write is not nil it is used instead of
// Write to put the frame on the wire (to trickle it, for example).
func (c *Conn) RoundTrip(ctx context.Context, id int64, frame []byte, write func([]byte) error) (Reply, error) {
	wait, err := c.Await(id)
	if err != nil {
		return Reply{}, err
	}
	if write == nil {
		write = c.Write
	}
	if err := write(frame); err != nil {
		c.forget(id)
		return Reply{}, err
	}
	return wait(ctx)
}

// Await registers id as a pending call before its frame is written (by
// Write, for frames a test assembles itself) and returns the function that
// waits for its reply, the connection's end or ctx's end.
func (c *Conn) Await(id int64) (wait func(context.Context) (Reply, error), err error) {
	ch := make(chan Reply, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClosed, c.err)
	}
	c.pending[id] = ch
	return func(ctx context.Context) (Reply, error) {
		select {
		case r := <-ch:
			return r, nil
		case <-c.done:
			// The reply may have been delivered just before the close.
			select {
			case r := <-ch:
				return r, nil
			default:
			}
			return Reply{}, fmt.Errorf("%w: %v", ErrClosed, c.Err())
		case <-ctx.Done():
			c.forget(id)
			return Reply{}, ctx.Err()
		}
	}, nil
}

// Write writes b to the connection as one unit.
func (c *Conn) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// Trickle returns a writer for RoundTrip that sends a frame one byte at a
// time with pause between bytes. It holds the write lock for the whole frame.
func (c *Conn) Trickle(pause time.Duration) func([]byte) error {
	return func(b []byte) error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		for i := range b {
			if _, err := c.nc.Write(b[i : i+1]); err != nil {
				return err
			}
			time.Sleep(pause)
		}
		return nil
	}
}

func (c *Conn) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// readLoop reads response frames until the connection fails, then records
// the reason and closes done.
func (c *Conn) readLoop() {
	err := c.readFrames(bufio.NewReader(c.nc))
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
}

func (c *Conn) readFrames(br *bufio.Reader) error {
	for {
		hdr := make([]byte, HeaderLen)
		if _, err := io.ReadFull(br, hdr); err != nil {
			return err
		}
		n, err := frameLen(hdr)
		if err != nil {
			return err
		}
		frame := append(hdr, make([]byte, n)...)
		if _, err := io.ReadFull(br, frame[HeaderLen:]); err != nil {
			return err
		}
		r, err := DecodeResponse(frame)
		if err != nil {
			return err
		}
		c.mu.Lock()
		ch, ok := c.pending[r.ID]
		delete(c.pending, r.ID)
		if !ok {
			c.stray = append(c.stray, r.ID)
		}
		c.mu.Unlock()
		if ok {
			ch <- r
		}
	}
}
