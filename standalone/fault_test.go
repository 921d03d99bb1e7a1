package standalone

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
	"github.com/metaproxy/metaproxy/internal/golden"
)

// chaosUpstream is a Dubbo server on a fixed address that misbehaves at
// random while chaos is on: it resets connections part-way through a
// request, closes them after a few answers, and is killed (listener and
// every connection) and restarted on the same port.
type chaosUpstream struct {
	t    *testing.T
	addr string
	f    codec.Factory
	resp []byte
	on   atomic.Bool // chaos on

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newChaosUpstream(t *testing.T, f codec.Factory) *chaosUpstream {
	u := &chaosUpstream{t: t, f: f, resp: golden.DubboFrame(t, "lib_rsp_value"), conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = ln.Addr().String()
	u.serve(ln)
	t.Cleanup(u.kill)
	return u
}

func (u *chaosUpstream) serve(ln net.Listener) {
	u.mu.Lock()
	u.ln = ln
	u.mu.Unlock()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			if u.ln != ln { // killed while this connection was accepted
				u.mu.Unlock()
				reset(c)
				continue
			}
			u.conns[c] = struct{}{}
			u.wg.Add(1)
			u.mu.Unlock()
			go u.handle(c)
		}
	}()
}

// kill closes the listener and resets every connection.
func (u *chaosUpstream) kill() {
	u.mu.Lock()
	if u.ln != nil {
		u.ln.Close()
		u.ln = nil
	}
	for c := range u.conns {
		reset(c)
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// restart listens on the same address again. A port held by someone else
// (the proxy connected to itself on it, say) fails the test.
func (u *chaosUpstream) restart() error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		ln, err := net.Listen("tcp", u.addr)
		if err == nil {
			u.serve(ln)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("upstream cannot listen on %s again: %w", u.addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (u *chaosUpstream) handle(c net.Conn) {
	defer u.wg.Done()
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		c.Close()
	}()
	rnd := rand.New(rand.NewPCG(rand.Uint64(), 1))
	cd := u.f.NewCodec()
	var rm codec.Message
	rm.Frame = u.resp
	if err := cd.Decode(u.resp, &rm); err != nil {
		u.t.Error(err)
		return
	}
	// While chaos is on, a connection dies after a random number of bytes
	// read, mid-frame or not, with a reset or a close.
	limit := -1
	if u.on.Load() && rnd.IntN(2) == 0 {
		limit = rnd.IntN(2000)
	}
	var buf []byte
	tmp := make([]byte, 4096)
	read := 0
	for {
		n, err := c.Read(tmp)
		if err != nil {
			return
		}
		read += n
		if limit >= 0 && read > limit {
			if rnd.IntN(2) == 0 {
				reset(c)
			}
			return
		}
		buf = append(buf, tmp[:n]...)
		var out []byte
		for {
			k, err := cd.Split(buf)
			if err != nil {
				return
			}
			if k == 0 {
				break
			}
			var m codec.Message
			m.Frame = buf[:k]
			if cd.Decode(buf[:k], &m) == nil && m.Kind == codec.KindRequest {
				out, _ = cd.Encode(out, &rm, &codec.Edit{SetID: true, ID: m.ID})
			}
			buf = buf[k:]
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	}
}

// dubboCaller is a raw Dubbo client that pipelines requests on one
// connection and matches answers by id.
type dubboCaller struct {
	c    net.Conn
	cd   codec.Codec
	req  codec.Message
	next uint64
	buf  []byte
}

func newDubboCaller(t *testing.T, f codec.Factory, addr string) *dubboCaller {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	d := &dubboCaller{c: c, cd: f.NewCodec()}
	d.req.Frame = golden.DubboFrame(t, "lib_req_hello")
	if err := d.cd.Decode(d.req.Frame, &d.req); err != nil {
		t.Fatal(err)
	}
	return d
}

// batch sends n requests in one write and waits up to wait for all n
// answers; it returns how many were OK and how many native errors.
func (d *dubboCaller) batch(n int, wait time.Duration) (ok, failed int, err error) {
	var out []byte
	want := map[uint64]bool{}
	for range n {
		d.next++
		want[d.next] = true
		out, _ = d.cd.Encode(out, &d.req, &codec.Edit{SetID: true, ID: d.next})
	}
	if _, err := d.c.Write(out); err != nil {
		return 0, 0, err
	}
	_ = d.c.SetReadDeadline(time.Now().Add(wait))
	tmp := make([]byte, 4096)
	for len(want) > 0 {
		k, serr := d.cd.Split(d.buf)
		if serr != nil {
			return ok, failed, serr
		}
		if k == 0 {
			m, rerr := d.c.Read(tmp)
			if rerr != nil {
				return ok, failed, fmt.Errorf("%d of %d answers missing: %w", len(want), n, rerr)
			}
			d.buf = append(d.buf, tmp[:m]...)
			continue
		}
		var m codec.Message
		m.Frame = d.buf[:k]
		if err := d.cd.Decode(d.buf[:k], &m); err != nil {
			return ok, failed, err
		}
		d.buf = d.buf[k:]
		if !want[m.ID] {
			return ok, failed, fmt.Errorf("answer for id %d that was not asked or was answered already", m.ID)
		}
		delete(want, m.ID)
		if m.Status == codec.StatusOK {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed, nil
}

// TestUpstreamChaosNoDeadlock pins reliability defect 1 on real sockets in
// both hosts: many pipelining clients while the upstream resets connections
// mid-request and is killed and restarted. Every call is answered (an
// answer or a native error, never a hang); once the upstream behaves, every
// client is served again, shutdown completes and no goroutine is left.
func TestUpstreamChaosNoDeadlock(t *testing.T) {
	forHosts(t, func(t *testing.T, h host) {
		for _, mux := range []bool{true, false} {
			t.Run("multiplexing="+strconv.FormatBool(mux), func(t *testing.T) { testUpstreamChaos(t, h, mux) })
		}
	})
}

func testUpstreamChaos(t *testing.T, h host, mux bool) {
	if h.reactor {
		_, _ = loopFor() // the loops live as long as the process
	}
	before := runtime.NumGoroutine()
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := newChaosUpstream(t, f)
	_, l, serveErr := startDubboProxy(t, h, f, up.addr, mux)
	ln := l.ln

	const clients = 16
	callers := make([]*dubboCaller, clients)
	for i := range callers {
		callers[i] = newDubboCaller(t, f, ln.Addr().String())
	}
	up.on.Store(true)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var okN, failN atomic.Int64
	errs := make(chan error, clients)
	for _, c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ok, failed, err := c.batch(1+rand.IntN(8), 10*time.Second)
				okN.Add(int64(ok))
				failN.Add(int64(failed))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Kill and restart the upstream at random points.
	chaosEnd := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(chaosEnd) {
		time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
		up.kill()
		time.Sleep(time.Duration(rand.IntN(100)) * time.Millisecond)
		if err := up.restart(); err != nil {
			t.Fatal(err)
		}
	}
	up.on.Store(false)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a client under chaos: %v", err)
	}
	t.Logf("under chaos: %d answers, %d native errors", okN.Load(), failN.Load())

	// The upstream is back: every client is served again once the
	// proxy's connect back-off has run out.
	for i, c := range callers {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, _, err := c.batch(1, 5*time.Second)
			if err != nil {
				t.Fatalf("client %d after recovery: %v", i, err)
			}
			if ok == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("client %d still gets errors 10s after the upstream is back", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- l.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown hangs")
	}
	if err := <-serveErr; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("serve: %v", err)
	}
	for _, c := range callers {
		c.c.Close()
	}
	up.kill()
	waitGoroutines(t, before)
}

// waitGoroutines waits until no more goroutines run than before.
func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
