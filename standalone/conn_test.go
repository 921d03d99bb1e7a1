package standalone

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/transport"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// host is one of the standalone host's I/O models, so that every test runs
// against both.
type host struct {
	name    string
	reactor bool
	// wrap turns a connected socket into the host's transport.Conn; what the
	// peer sends is discarded.
	wrap func(t *testing.T, nc net.Conn, maxBuf int) transport.Conn
}

// hosts lists the goroutine host; reactor_linux_test.go adds the reactor.
var hosts = []host{{
	name: "goroutines",
	wrap: func(_ *testing.T, nc net.Conn, maxBuf int) transport.Conn { return newConn(nc, maxBuf) },
}}

func forHosts(t *testing.T, test func(t *testing.T, h host)) {
	for _, h := range hosts {
		t.Run(h.name, func(t *testing.T) { test(t, h) })
	}
}

// TestWriteKeepsOrderUnderBackpressure writes from several goroutines to a
// peer that does not read at first: the socket fills, the rest waits in the
// buffer, and every byte arrives once, each writer's chunks in order.
func TestWriteKeepsOrderUnderBackpressure(t *testing.T) {
	forHosts(t, testWriteKeepsOrderUnderBackpressure)
}

func testWriteKeepsOrderUnderBackpressure(t *testing.T, h host) {
	client, server := tcpPair(t)
	w := h.wrap(t, client, 64<<20)
	const writers, chunks, size = 4, 500, 1000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range chunks {
				b := bytes.Repeat([]byte{byte(g)}, size)
				b[0], b[1] = byte(i>>8), byte(i)
				if err := w.Write(b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait() // all writes returned although nobody read: Write never blocks
	w.Close(true)
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != writers*chunks*size {
		t.Fatalf("got %d bytes, want %d", len(got), writers*chunks*size)
	}
	next := make([]int, writers)
	for off := 0; off < len(got); off += size {
		c := got[off : off+size]
		g := int(c[2])
		if g >= writers || !bytes.Equal(c[2:], bytes.Repeat([]byte{byte(g)}, size-2)) {
			t.Fatalf("chunk at %d is torn", off)
		}
		if i := int(c[0])<<8 | int(c[1]); i != next[g] {
			t.Fatalf("writer %d: chunk %d arrived when %d was due", g, i, next[g])
		}
		next[g]++
	}
}

func TestSlowPeerIsClosed(t *testing.T) { forHosts(t, testSlowPeerIsClosed) }

func testSlowPeerIsClosed(t *testing.T, h host) {
	client, server := tcpPair(t)
	w := h.wrap(t, client, 256<<10)
	chunk := make([]byte, 64<<10)
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = w.Write(chunk)
	}
	if !errors.Is(err, transport.ErrSlowPeer) {
		t.Fatalf("writes to a peer that never reads: %v, want transport.ErrSlowPeer", err)
	}
	_ = server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, server); err != nil {
		t.Fatalf("connection not closed after the buffer limit: %v", err)
	}
}

// dialOutcome records what a Dialer reports for one connection.
type dialOutcome struct{ connected, failed chan error }

func (d dialOutcome) OnConnect(c transport.Conn) { c.Close(false); d.connected <- nil }
func (d dialOutcome) OnConnectFailure(err error) { d.failed <- err }
func (d dialOutcome) OnData([]byte)              {}
func (d dialOutcome) OnClose(error)              {}

// TestDialRefused dials a port nobody listens on: the failure is reported
// after Dial returned, and no connect is.
func TestDialRefused(t *testing.T) {
	forHosts(t, func(t *testing.T, h host) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		d := dialOutcome{connected: make(chan error, 1), failed: make(chan error, 1)}
		newDialer(1<<20, h.reactor).Dial(addr, d)
		select {
		case err := <-d.failed:
			if err == nil {
				t.Fatal("failure reported without an error")
			}
		case <-d.connected:
			t.Fatal("connected to a closed port")
		}
	})
}
