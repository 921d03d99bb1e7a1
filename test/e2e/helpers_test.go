package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/test/harness"
	"github.com/metaproxy/metaproxy/test/peers/dubbo/rawdubbo"
)

// serveTCP runs a misbehaving upstream on 127.0.0.1: handle gets each
// accepted connection. When the test ends the listener and every connection
// are closed and the handlers waited for. It returns the address.
func serveTCP(t *testing.T, handle func(*net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	return ln.Addr().String()
}

// startBlackhole is an upstream that reads everything and answers nothing.
func startBlackhole(t *testing.T) string {
	return serveTCP(t, func(c *net.TCPConn) { _, _ = io.Copy(io.Discard, c) })
}

// startGarbageUpstream answers whatever it reads with bytes that are no
// Dubbo frame.
func startGarbageUpstream(t *testing.T) string {
	junk := []byte(strings.Repeat("this is not dubbo ", 4))
	return serveTCP(t, func(c *net.TCPConn) {
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
	})
}

// startResetter is an upstream that reads the first bytes of each
// connection (part of a Dubbo header; a peer that sends nothing is reset
// too) and then resets it; resets counts them.
func startResetter(t *testing.T, resets *atomic.Int64) string {
	return serveTCP(t, func(c *net.TCPConn) {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadFull(c, make([]byte, 6))
		_ = c.SetLinger(0)
		c.Close()
		resets.Add(1)
	})
}

// startStandaloneSh runs the metaproxy binary from bootstrap y with flags,
// through /bin/sh so that sh (environment assignments such as
// METAPROXY_REACTOR=0, a ulimit) applies to it, and waits until its first
// listener accepts connections.
func startStandaloneSh(t *testing.T, y, sh string, flags ...string) (addr string, mp *harness.Process) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, err := harness.ListenerAddr(y)
	if err != nil {
		t.Fatal(err)
	}
	bin := harness.Build(t, harness.Module+"/cmd/metaproxy")
	args := append([]string{"-c", `` + sh + ` exec "$0" "$@"`, bin, "-c", file}, flags...)
	return addr, harness.StartListening(t, "metaproxy", addr, "/bin/sh", args...)
}

// pipeline writes n calls of req on c in one write and returns, in order,
// the functions that wait for their replies.
func pipeline(t *testing.T, c *rawdubbo.Conn, n int, req rawdubbo.Call) []func(context.Context) (rawdubbo.Reply, error) {
	t.Helper()
	var waits []func(context.Context) (rawdubbo.Reply, error)
	var batch []byte
	for range n {
		id := c.NextID()
		w, err := c.Await(id)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
		f, err := rawdubbo.EncodeRequest(id, req)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, f...)
	}
	if err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	return waits
}
