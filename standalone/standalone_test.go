package standalone

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/cluster"
	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
	"github.com/metaproxy/metaproxy/internal/golden"
	"github.com/metaproxy/metaproxy/proxy"
	"github.com/metaproxy/metaproxy/router"
)

// dubboServer answers every request with resp (id rewritten) after delay.
func dubboServer(t *testing.T, f codec.Factory, resp []byte, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				cd := f.NewCodec()
				var rm codec.Message
				rm.Frame = resp
				_ = cd.Decode(resp, &rm)
				buf := make([]byte, 0, 4096)
				tmp := make([]byte, 4096)
				for {
					n, err := c.Read(tmp)
					if err != nil {
						return
					}
					buf = append(buf, tmp[:n]...)
					for {
						k, err := cd.Split(buf)
						if err != nil || k == 0 {
							break
						}
						var m codec.Message
						m.Frame = buf[:k]
						_ = cd.Decode(buf[:k], &m)
						buf = buf[k:]
						if m.Kind == codec.KindRequest {
							out, _ := cd.Encode(nil, &rm, &codec.Edit{SetID: true, ID: m.ID})
							go func() { time.Sleep(delay); _, _ = c.Write(out) }()
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startDubboProxy serves a Dubbo listener on 127.0.0.1 in host h that routes
// everything to upstream; Serve's result arrives on serveErr.
func startDubboProxy(t *testing.T, h host, f codec.Factory, upstream string, mux bool) (srv *proxy.Server, l *Listener, serveErr chan error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(upstream)
	p, _ := strconv.Atoi(port)
	srv, err := proxy.New(proxy.Config{
		StatPrefix: "t", Protocol: "dubbo", Codec: f, Multiplexing: mux,
		Routes:   &router.Table{Routes: []*router.Route{{Name: "all", Cluster: "c"}}},
		Clusters: []cluster.Config{{Name: "c", Type: cluster.Static, ConnectTimeout: time.Second, Endpoints: []cluster.Endpoint{{Host: host, Port: p, Weight: 1}}}},
	}, proxy.Options{Dialer: newDialer(1<<20, h.reactor)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = NewListener(srv, ln, 1<<20, nil)
	l.reactor = h.reactor
	serveErr = make(chan error, 1)
	go func() { serveErr <- l.Serve() }()
	return srv, l, serveErr
}

func TestServeAndDrain(t *testing.T) { forHosts(t, testServeAndDrain) }

func testServeAndDrain(t *testing.T, h host) {
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	upstream := dubboServer(t, f, golden.DubboFrame(t, "lib_rsp_value"), 300*time.Millisecond)
	srv, l, serveErr := startDubboProxy(t, h, f, upstream, true)
	ln := l.ln

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := golden.DubboFrame(t, "lib_req_hello")
	// Two requests in one write; both are in flight when shutdown starts.
	if _, err := c.Write(append(append([]byte(nil), req...), req...)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.InFlight() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- l.Shutdown(context.Background()) }()
	// New connections are refused once shutdown has begun.
	time.Sleep(50 * time.Millisecond)
	if nc, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		nc.Close()
		t.Error("listener still accepts during drain")
	}
	// Both answers arrive before the connection is closed.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	cd := f.NewCodec()
	for i := range 2 {
		n, err := cd.Split(got)
		if err != nil || n == 0 {
			t.Fatalf("response %d missing (got %d bytes)", i, len(got))
		}
		got = got[n:]
	}
	if err := <-done; err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := <-serveErr; err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
}
