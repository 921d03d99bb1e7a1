package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// frame is one tRPC frame a relay saw.
type frame struct {
	toServer bool
	b        []byte
}

// relay forwards connections to a server frame by frame and records every
// frame, in the order it saw them.
type relay struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	frames []frame
	wg     sync.WaitGroup
}

// startRelay listens on 127.0.0.1 and relays to target.
func startRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target}
	go r.accept()
	return r, nil
}

func (r *relay) addr() string { return r.ln.Addr().String() }

func (r *relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.wg.Add(2)
		go r.pump(c, s, true)
		go r.pump(s, c, false)
	}
}

// pump copies frames from src to dst until either fails.
func (r *relay) pump(src, dst net.Conn, toServer bool) {
	defer r.wg.Done()
	defer src.Close()
	defer dst.Close()
	for {
		b, err := readFrame(src)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.frames = append(r.frames, frame{toServer: toServer, b: b})
		r.mu.Unlock()
		if _, err := dst.Write(b); err != nil {
			return
		}
	}
}

// readFrame reads one frame: the 16-byte head, then the rest of the total
// length it announces.
func readFrame(r io.Reader) ([]byte, error) {
	head := make([]byte, 16)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	if head[0] != 0x09 || head[1] != 0x30 {
		return nil, fmt.Errorf("bad magic % x", head[:2])
	}
	total := binary.BigEndian.Uint32(head[4:8])
	if total < 16 || total > 16<<20 {
		return nil, fmt.Errorf("bad total length %d", total)
	}
	b := make([]byte, total)
	copy(b, head)
	_, err := io.ReadFull(r, b[16:])
	return b, err
}

// take waits until at least n frames were recorded since the last take,
// then until none arrived for settle, and returns them.
func (r *relay) take(n int, settle time.Duration) ([]frame, error) {
	deadline := time.Now().Add(10 * time.Second)
	last, lastChange := -1, time.Now()
	for {
		r.mu.Lock()
		k := len(r.frames)
		r.mu.Unlock()
		if k != last {
			last, lastChange = k, time.Now()
		}
		if k >= n && time.Since(lastChange) >= settle {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("relay: %d frames after 10s, want %d", k, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fs := r.frames
	r.frames = nil
	return fs, nil
}

func (r *relay) close() {
	r.ln.Close()
}
