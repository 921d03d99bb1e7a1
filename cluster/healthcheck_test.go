package cluster

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metaproxy/metaproxy/codec"
	"github.com/metaproxy/metaproxy/codecs/dubbo"
)

// hcDeadline bounds every wait of these tests: generous, for a loaded
// machine.
const hcDeadline = 15 * time.Second

// hcEventually polls cond until it holds or hcDeadline passes.
func hcEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(hcDeadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testServer accepts connections on 127.0.0.1 and runs handle on each.
type testServer struct {
	ln       net.Listener
	addr     string
	accepted atomic.Int32
	done     chan struct{} // closed by close: handlers should return
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
	once     sync.Once
}

// startServer listens on addr ("127.0.0.1:0" for any port), retrying for a
// while when the port is still busy.
func startServer(t *testing.T, addr string, handle func(s *testServer, c net.Conn)) *testServer {
	t.Helper()
	var ln net.Listener
	var err error
	hcEventually(t, "listening on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	s := &testServer{ln: ln, addr: ln.Addr().String(), done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(s, c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *testServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// close stops listening, closes every connection and waits for the
// handlers.
func (s *testServer) close() {
	s.once.Do(func() {
		close(s.done)
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// freePort returns a port of 127.0.0.1 on which nothing listens.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// logRecorder is a slog handler keeping the messages it is given.
type logRecorder struct {
	mu   sync.Mutex
	recs []string // message followed by its attributes
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, b.String())
	l.mu.Unlock()
	return nil
}

// find returns the records containing every one of subs.
func (l *logRecorder) find(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, r := range l.recs {
		for _, s := range subs {
			if !strings.Contains(r, s) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// hcCluster builds a STATIC cluster of 127.0.0.1 ports checked by hc.
func hcCluster(t *testing.T, hc *HealthCheck, ports ...int) (*Cluster, *logRecorder) {
	t.Helper()
	var eps []Endpoint
	for _, p := range ports {
		eps = append(eps, Endpoint{Host: "127.0.0.1", Port: p, Weight: 1})
	}
	rec := &logRecorder{}
	c, err := New(Config{Name: "hc", Type: Static, LBPolicy: "ROUND_ROBIN", Endpoints: eps, HealthCheck: hc}, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, rec
}

// fastHC is a check every 20 ms, timing out after a second.
func fastHC(unhealthy, healthy uint32) *HealthCheck {
	return &HealthCheck{Timeout: time.Second, Interval: 20 * time.Millisecond,
		UnhealthyThreshold: unhealthy, HealthyThreshold: healthy, ReuseConnection: true, TCP: &TCPHealthCheck{}}
}

func activeHC(h *Host) bool { return h.HealthFlags()&FailedActiveHC == 0 }

// waitHC waits until the one host of c is healthy (or not) by its flag,
// membership and the health_check.healthy gauge, which a transition sets
// last (after its log).
func waitHC(t *testing.T, c *Cluster, healthy bool, what string) {
	t.Helper()
	n := 0
	if healthy {
		n = 1
	}
	hcEventually(t, what, func() bool {
		_, m := c.Membership()
		return activeHC(c.Hosts()[0]) == healthy && m == n && c.Stats().HealthCheckHealthy.Load() == int64(n)
	})
}

// sessions counts the goroutines running health check sessions.
func sessions() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("cluster.(*hcSession).run("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// drainUntilEOF reads c until its peer closes it and counts that.
func drainUntilEOF(eofs *atomic.Int32) func(*testServer, net.Conn) {
	return func(_ *testServer, c net.Conn) {
		if _, err := io.Copy(io.Discard, c); err == nil {
			eofs.Add(1)
		}
	}
}

func TestHealthCheckConnectMakesHostHealthy(t *testing.T) {
	var eofs atomic.Int32
	srv := startServer(t, "127.0.0.1:0", drainUntilEOF(&eofs))
	c, rec := hcCluster(t, fastHC(3, 3), srv.port())
	h := c.Hosts()[0]
	// The first success is enough (HealthyThreshold 3 notwithstanding).
	waitHC(t, c, true, "the host to pass its first check")
	if _, healthy := c.Membership(); healthy != 1 {
		t.Errorf("membership_healthy %d, want 1", healthy)
	}
	if g := c.Stats().HealthCheckHealthy.Load(); g != 1 {
		t.Errorf("health_check.healthy %d, want 1", g)
	}
	if len(rec.find("host is healthy", "host="+h.Addr, "reason=first check passed")) != 1 {
		t.Errorf("no log of the transition: %v", rec.find(""))
	}
	// A connect-only check closes every connection it makes.
	hcEventually(t, "checks closing their connections", func() bool { return eofs.Load() >= 3 })
	c.Close()
	st := c.Stats()
	if a, s := st.HealthCheckAttempt.Load(), st.HealthCheckSuccess.Load(); a < 3 || s != a || st.HealthCheckFailure.Load() != 0 {
		t.Errorf("attempt %d success %d failure %d, want only successes", a, s, st.HealthCheckFailure.Load())
	}
	if n := sessions(); n != 0 {
		t.Errorf("%d sessions still running after Close", n)
	}
}

func TestHealthCheckClosedPortStaysUnhealthy(t *testing.T) {
	c, _ := hcCluster(t, fastHC(2, 2), freePort(t))
	h := c.Hosts()[0]
	st := c.Stats()
	if activeHC(h) {
		t.Fatal("a new host is healthy before its first check")
	}
	if _, healthy := c.Membership(); healthy != 0 {
		t.Fatalf("membership_healthy %d before the first check", healthy)
	}
	hcEventually(t, "several failed checks", func() bool { return st.HealthCheckFailure.Load() >= 4 })
	if activeHC(h) {
		t.Error("a host nothing listens on became healthy")
	}
	c.Close()
	if f, nf, a := st.HealthCheckFailure.Load(), st.HealthCheckNetworkFailure.Load(), st.HealthCheckAttempt.Load(); f != a || nf != f || st.HealthCheckSuccess.Load() != 0 {
		t.Errorf("attempt %d failure %d network_failure %d success %d: want only network failures", a, f, nf, st.HealthCheckSuccess.Load())
	}
	if g := st.HealthCheckHealthy.Load(); g != 0 {
		t.Errorf("health_check.healthy %d, want 0", g)
	}
}

func TestHealthCheckThresholds(t *testing.T) {
	var eofs atomic.Int32
	srv := startServer(t, "127.0.0.1:0", drainUntilEOF(&eofs))
	addr := srv.addr
	c, rec := hcCluster(t, fastHC(3, 2), srv.port())
	st := c.Stats()
	waitHC(t, c, true, "healthy")

	srv.close()
	waitHC(t, c, false, "unhealthy once the port is closed")
	if g := st.HealthCheckHealthy.Load(); g != 0 {
		t.Errorf("health_check.healthy %d while unhealthy", g)
	}
	if _, healthy := c.Membership(); healthy != 0 {
		t.Errorf("membership_healthy %d while unhealthy", healthy)
	}
	if got := rec.find("host is unhealthy", "host="+addr, "connect", "(3 consecutive failed checks)"); len(got) != 1 {
		t.Errorf("unhealthy transition logs %v, want one after 3 consecutive failures", rec.find("unhealthy"))
	}
	if nf := st.HealthCheckNetworkFailure.Load(); nf < 3 {
		t.Errorf("network_failure %d, want at least 3", nf)
	}

	startServer(t, addr, drainUntilEOF(&eofs)) // the same port again
	waitHC(t, c, true, "healthy again")
	if got := rec.find("host is healthy", "reason=2 consecutive successful checks"); len(got) != 1 {
		t.Errorf("healthy transition logs %v, want one after 2 successes", rec.find("healthy"))
	}
	if g := st.HealthCheckHealthy.Load(); g != 1 {
		t.Errorf("health_check.healthy %d, want 1", g)
	}
	c.Close()
	a, s, f := st.HealthCheckAttempt.Load(), st.HealthCheckSuccess.Load(), st.HealthCheckFailure.Load()
	if a != s+f || f < 3 || s < 3 || st.HealthCheckNetworkFailure.Load() != f {
		t.Errorf("attempt %d success %d failure %d network_failure %d", a, s, f, st.HealthCheckNetworkFailure.Load())
	}
}

// pingServer answers every read with the pieces of answer, written apart.
func pingServer(answer ...string) func(*testServer, net.Conn) {
	return func(s *testServer, c net.Conn) {
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			for _, a := range answer {
				if _, err := c.Write([]byte(a)); err != nil {
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

func TestHealthCheckTCPSendReceive(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		t.Run("reuse="+strconv.FormatBool(reuse), func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0", pingServer("xxHEL", "LOyyWOR", "LDzz"))
			hc := fastHC(1, 1)
			hc.ReuseConnection = reuse
			hc.TCP = &TCPHealthCheck{Send: []byte("PING"), Receive: [][]byte{[]byte("HELLO"), []byte("WORLD")}}
			c, _ := hcCluster(t, hc, srv.port())
			st := c.Stats()
			waitHC(t, c, true, "healthy")
			hcEventually(t, "five successes", func() bool { return st.HealthCheckSuccess.Load() >= 5 })
			c.Close()
			if f := st.HealthCheckFailure.Load(); f != 0 {
				t.Errorf("%d failures", f)
			}
			n := srv.accepted.Load()
			if reuse && n != 1 {
				t.Errorf("%d connections with reuse_connection, want 1", n)
			}
			if !reuse && n < 5 {
				t.Errorf("%d connections for %d checks without reuse_connection", n, st.HealthCheckSuccess.Load())
			}
		})
	}
}

func TestHealthCheckTCPReceiveMismatchTimesOut(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", pingServer("xxHELLOyyWORLDzz"))
	hc := fastHC(1, 1)
	hc.Timeout = 100 * time.Millisecond
	// In order: WORLD comes after HELLO, not before.
	hc.TCP = &TCPHealthCheck{Send: []byte("PING"), Receive: [][]byte{[]byte("WORLD"), []byte("HELLO")}}
	c, _ := hcCluster(t, hc, srv.port())
	st := c.Stats()
	hcEventually(t, "three failures", func() bool { return st.HealthCheckFailure.Load() >= 3 })
	c.Close()
	if activeHC(c.Hosts()[0]) || st.HealthCheckSuccess.Load() != 0 {
		t.Error("a mismatched answer passed")
	}
	if nf, f := st.HealthCheckNetworkFailure.Load(), st.HealthCheckFailure.Load(); nf != f {
		t.Errorf("network_failure %d of %d failures: a mismatch fails by timeout", nf, f)
	}
	if n := srv.accepted.Load(); n < 3 {
		t.Errorf("%d connections for %d failed checks: a failure must close the connection", n, st.HealthCheckFailure.Load())
	}
}

func TestHealthCheckTCPReceiveBound(t *testing.T) {
	big := strings.Repeat("x", 8<<10)
	srv := startServer(t, "127.0.0.1:0", func(_ *testServer, c net.Conn) {
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil {
			return
		}
		for {
			if _, err := c.Write([]byte(big)); err != nil {
				return
			}
		}
	})
	hc := fastHC(1, 1)
	hc.Timeout = 5 * time.Second
	hc.TCP = &TCPHealthCheck{Send: []byte("PING"), Receive: [][]byte{[]byte("never")}}
	c, rec := hcCluster(t, hc, srv.port())
	st := c.Stats()
	hcEventually(t, "a failure", func() bool { return st.HealthCheckFailure.Load() >= 1 })
	c.Close()
	if nf := st.HealthCheckNetworkFailure.Load(); nf != 0 {
		t.Errorf("network_failure %d: an answer over the bound is not a network failure", nf)
	}
	if len(rec.find("health check failed", "no match")) == 0 {
		t.Errorf("logs %v", rec.find(""))
	}
}

// dubboServer answers Dubbo heartbeats as mode says.
const (
	dubboAnswer  = iota // an unrelated frame, then the heartbeat answer
	dubboSilent         // nothing (new connections are never read)
	dubboFailure        // a response with a non-OK status
)

func dubboServer(mode *atomic.Int32, probes *atomic.Int32) func(*testServer, net.Conn) {
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		panic(err)
	}
	return func(s *testServer, c net.Conn) {
		if mode.Load() == dubboSilent {
			<-s.done
			return
		}
		cd := f.NewCodec()
		var buf []byte
		tmp := make([]byte, 4096)
		var msg codec.Message
		for {
			n, err := c.Read(tmp)
			if err != nil {
				return
			}
			buf = append(buf, tmp[:n]...)
			for {
				n, err := cd.Split(buf)
				if err != nil {
					return
				}
				if n == 0 {
					break
				}
				frame := buf[:n]
				msg.Reset()
				msg.Frame = frame
				if err := cd.Decode(frame, &msg); err != nil {
					return
				}
				buf = buf[n:]
				if msg.Kind != codec.KindHeartbeat || !msg.HeartbeatRequest {
					continue
				}
				probes.Add(1)
				var out []byte
				switch mode.Load() {
				case dubboSilent:
					continue
				case dubboFailure:
					out = cd.ErrorReply(nil, &codec.Message{Kind: codec.KindRequest, ID: msg.ID}, codec.Errorf(codec.ErrInternal, "down"))
				default:
					other := msg
					other.ID += 1000
					out = cd.HeartbeatReply(nil, &other) // another id: skipped
					out = cd.HeartbeatReply(out, &msg)
				}
				if _, err := c.Write(out); err != nil {
					return
				}
			}
		}
	}
}

func dubboHC(t *testing.T) *HealthCheck {
	t.Helper()
	f, err := dubbo.NewFactory(dubbo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &HealthCheck{Timeout: time.Second, Interval: 20 * time.Millisecond,
		UnhealthyThreshold: 2, HealthyThreshold: 2, ReuseConnection: true,
		Codec: true, Prober: f, ProberName: dubbo.Name}
}

func TestHealthCheckDubboProbe(t *testing.T) {
	var mode, probes atomic.Int32
	srv := startServer(t, "127.0.0.1:0", dubboServer(&mode, &probes))
	c, rec := hcCluster(t, dubboHC(t), srv.port())
	st := c.Stats()
	waitHC(t, c, true, "healthy")
	hcEventually(t, "five successes", func() bool { return st.HealthCheckSuccess.Load() >= 5 })
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1 reused", n)
	}
	if f := st.HealthCheckFailure.Load(); f != 0 {
		t.Errorf("%d failures while the server answers", f)
	}

	// The server stops answering; its port still accepts.
	mode.Store(dubboSilent)
	waitHC(t, c, false, "unhealthy")
	if got := rec.find("host is unhealthy", "read: timeout"); len(got) != 1 {
		t.Errorf("unhealthy logs %v", rec.find("unhealthy"))
	}
	hcEventually(t, "a probe on a new connection", func() bool { return srv.accepted.Load() >= 2 })
	if nf, f := st.HealthCheckNetworkFailure.Load(), st.HealthCheckFailure.Load(); nf != f || f < 2 {
		t.Errorf("network_failure %d failure %d: timeouts are network failures", nf, f)
	}

	mode.Store(dubboAnswer)
	waitHC(t, c, true, "healthy again")
	c.Close()
	if a := st.HealthCheckAttempt.Load(); a != st.HealthCheckSuccess.Load()+st.HealthCheckFailure.Load() {
		t.Errorf("attempt %d != success %d + failure %d", a, st.HealthCheckSuccess.Load(), st.HealthCheckFailure.Load())
	}
}

func TestHealthCheckDubboServerFailure(t *testing.T) {
	var mode, probes atomic.Int32
	mode.Store(dubboFailure)
	srv := startServer(t, "127.0.0.1:0", dubboServer(&mode, &probes))
	c, _ := hcCluster(t, dubboHC(t), srv.port())
	st := c.Stats()
	hcEventually(t, "three failures", func() bool { return st.HealthCheckFailure.Load() >= 3 })
	c.Close()
	if activeHC(c.Hosts()[0]) || st.HealthCheckSuccess.Load() != 0 {
		t.Error("a server failure answer passed")
	}
	if nf := st.HealthCheckNetworkFailure.Load(); nf != 0 {
		t.Errorf("network_failure %d: the server answered", nf)
	}
}

// badCodec is a codec whose calls panic, or one that cannot probe.
type badCodec struct{}

func (badCodec) Split([]byte) (int, error)                                        { panic("split") }
func (badCodec) Decode([]byte, *codec.Message) error                              { panic("decode") }
func (badCodec) Encode(d []byte, _ *codec.Message, _ *codec.Edit) ([]byte, error) { return d, nil }
func (badCodec) ErrorReply(d []byte, _ *codec.Message, _ *codec.Error) []byte     { return d }
func (badCodec) HeartbeatReply(d []byte, _ *codec.Message) []byte                 { return d }

type panickyProber struct{ badCodec }

func (panickyProber) ProbeRequest(dst []byte, _ uint64) []byte { return append(dst, "probe"...) }

func TestHealthCheckBadCodecs(t *testing.T) {
	for name, f := range map[string]codec.Factory{
		"panics":    codec.FactoryFunc(func() codec.Codec { return panickyProber{} }),
		"no prober": codec.FactoryFunc(func() codec.Codec { return badCodec{} }),
		"nil":       nil,
	} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0", func(_ *testServer, c net.Conn) { io.Copy(io.Discard, c) })
			hc := dubboHC(t)
			hc.Prober, hc.ProberName = f, name
			c, rec := hcCluster(t, hc, srv.port())
			st := c.Stats()
			hcEventually(t, "two failures", func() bool { return st.HealthCheckFailure.Load() >= 2 })
			c.Close()
			if st.HealthCheckSuccess.Load() != 0 || st.HealthCheckNetworkFailure.Load() != 0 {
				t.Errorf("success %d network_failure %d", st.HealthCheckSuccess.Load(), st.HealthCheckNetworkFailure.Load())
			}
			switch name {
			case "panics":
				if len(rec.find("health check panicked", "panic: split")) == 0 {
					t.Errorf("no panic logged: %v", rec.find(""))
				}
			default:
				if n := srv.accepted.Load(); n != 0 {
					t.Errorf("%d connections for a check that cannot probe", n)
				}
			}
		})
	}
}

func TestHealthCheckUpdateStopsRemovedHosts(t *testing.T) {
	var eofs atomic.Int32
	a := startServer(t, "127.0.0.1:0", drainUntilEOF(&eofs))
	b := startServer(t, "127.0.0.1:0", drainUntilEOF(&eofs))
	c, _ := hcCluster(t, fastHC(2, 2), a.port(), b.port())
	st := c.Stats()
	hcEventually(t, "both healthy", func() bool { return st.HealthCheckHealthy.Load() == 2 })
	kept := c.Hosts()[0]
	hcEventually(t, "two sessions", func() bool { return sessions() == 2 })

	if err := c.Update([]Endpoint{{Host: "127.0.0.1", Port: a.port(), Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if g := st.HealthCheckHealthy.Load(); g != 1 {
		t.Errorf("health_check.healthy %d after a healthy host left, want 1", g)
	}
	if c.Hosts()[0] != kept || !activeHC(kept) {
		t.Error("the kept host lost its health")
	}
	hcEventually(t, "the removed host's session to end", func() bool { return sessions() == 1 })
	stopped := b.accepted.Load()

	// A new host starts its own session, unhealthy until checked; the kept
	// one keeps its session and state.
	if err := c.Update([]Endpoint{{Host: "127.0.0.1", Port: a.port(), Weight: 1}, {Host: "127.0.0.1", Port: b.port(), Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	hs := c.Hosts()
	if hs[0] != kept || !activeHC(kept) {
		t.Error("the kept host lost its health")
	}
	hcEventually(t, "two sessions", func() bool { return sessions() == 2 })
	hcEventually(t, "the new host healthy", func() bool { return activeHC(hs[1]) && st.HealthCheckHealthy.Load() == 2 })
	if b.accepted.Load() == stopped {
		t.Error("the re-added host was not checked")
	}
	if err := c.Update(nil); err != nil {
		t.Fatal(err)
	}
	if g := st.HealthCheckHealthy.Load(); g != 0 {
		t.Errorf("health_check.healthy %d with no hosts", g)
	}
	hcEventually(t, "every session to end", func() bool { return sessions() == 0 })
}

func TestHealthCheckCloseWaitsForChecksInFlight(t *testing.T) {
	release, got := make(chan struct{}), make(chan error, 1)
	srv := startServer(t, "127.0.0.1:0", func(s *testServer, c net.Conn) {
		select { // no read until the test says so
		case <-release:
		case <-s.done:
			return
		}
		c.SetDeadline(time.Now().Add(hcDeadline))
		_, err := io.ReadAll(c) // nil at EOF
		got <- err
	})
	hc := fastHC(1, 1)
	hc.Timeout = time.Minute
	hc.TCP = &TCPHealthCheck{Send: []byte("PING"), Receive: [][]byte{[]byte("PONG")}}
	c, _ := hcCluster(t, hc, srv.port())
	hcEventually(t, "a check in flight", func() bool { return srv.accepted.Load() == 1 })
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a check waiting on a one-minute timeout", d)
	}
	// Close returned: the check's connection is closed already.
	close(release)
	if err := <-got; err != nil {
		t.Errorf("the check's connection was not closed by Close: %v", err)
	}
	hcEventually(t, "no session", func() bool { return sessions() == 0 })
	if a := c.Stats().HealthCheckAttempt.Load(); a != 0 {
		t.Errorf("a check stopped by Close was counted (%d attempts)", a)
	}
	// Updates after Close start nothing.
	if err := c.Update([]Endpoint{{Host: "127.0.0.1", Port: freePort(t), Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if n := sessions(); n != 0 {
		t.Errorf("%d sessions started after Close", n)
	}
}

func TestHealthCheckIntervals(t *testing.T) {
	c := &Cluster{}
	hc := newHealthChecker(c, &HealthCheck{Interval: 10 * time.Second, NoTrafficInterval: 60 * time.Second})
	if hc.cfg.UnhealthyInterval != 10*time.Second || hc.cfg.UnhealthyEdgeInterval != 10*time.Second || hc.cfg.HealthyEdgeInterval != 10*time.Second {
		t.Errorf("defaults %+v", hc.cfg)
	}
	if hc.cfg.UnhealthyThreshold != 1 || hc.cfg.HealthyThreshold != 1 || hc.cfg.Timeout != DefaultConnectTimeout {
		t.Errorf("defaults %+v", hc.cfg)
	}
	hc = newHealthChecker(c, &HealthCheck{Interval: time.Second, UnhealthyInterval: 2 * time.Second})
	if hc.cfg.NoTrafficInterval != time.Second || hc.cfg.UnhealthyEdgeInterval != 2*time.Second {
		t.Errorf("defaults %+v", hc.cfg)
	}

	hc = newHealthChecker(c, &HealthCheck{Interval: 1 * time.Second, NoTrafficInterval: 60 * time.Second,
		UnhealthyInterval: 2 * time.Second, UnhealthyEdgeInterval: 3 * time.Second, HealthyEdgeInterval: 4 * time.Second})
	for _, tc := range []struct {
		traffic, unhealthy bool
		tr                 hcTransition
		want               time.Duration
	}{
		{false, false, hcUnchanged, 60 * time.Second},
		{false, true, hcChanged, 60 * time.Second},
		{true, false, hcUnchanged, 1 * time.Second},
		{true, false, hcPending, 1 * time.Second},
		{true, true, hcPending, 2 * time.Second},
		{true, true, hcUnchanged, 2 * time.Second},
		{true, true, hcChanged, 3 * time.Second},
		{true, false, hcChanged, 4 * time.Second},
	} {
		if tc.traffic {
			c.stats.UpstreamRqTotal.Store(1)
		} else {
			c.stats.UpstreamRqTotal.Store(0)
		}
		if got := hc.interval(tc.unhealthy, tc.tr); got != tc.want {
			t.Errorf("traffic %v unhealthy %v transition %d: %v, want %v", tc.traffic, tc.unhealthy, tc.tr, got, tc.want)
		}
	}

	hc = newHealthChecker(c, &HealthCheck{Interval: 100 * time.Millisecond, IntervalJitter: 10 * time.Millisecond, IntervalJitterPercent: 50})
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		d := hc.interval(false, hcUnchanged)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 100*time.Millisecond || hi >= 160*time.Millisecond || hi < 130*time.Millisecond {
		t.Errorf("jittered intervals in [%v, %v], want within [100ms, 160ms) and spread", lo, hi)
	}
	if d := newHealthChecker(c, &HealthCheck{}).interval(false, hcUnchanged); d != time.Millisecond {
		t.Errorf("a zero interval gives %v, want Envoy's 1 ms floor", d)
	}
}

func TestMatchBlocks(t *testing.T) {
	b := func(ss ...string) [][]byte {
		var out [][]byte
		for _, s := range ss {
			out = append(out, []byte(s))
		}
		return out
	}
	for _, tc := range []struct {
		buf  string
		want [][]byte
		ok   bool
	}{
		{"", nil, true},
		{"abc", b("abc"), true},
		{"xxabcyydefzz", b("abc", "def"), true},
		{"abcdef", b("abc", "def"), true},
		{"defabc", b("abc", "def"), false},
		{"abcabc", b("abc", "abc"), true},
		{"abc", b("abc", "abc"), false},
		{"abcd", b("abc", "cd"), false}, // each block after the end of the previous
		{"ab", b("abc"), false},
	} {
		if got := matchBlocks([]byte(tc.buf), tc.want); got != tc.ok {
			t.Errorf("matchBlocks(%q, %q) = %v", tc.buf, tc.want, got)
		}
	}
}
