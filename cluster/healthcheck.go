package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/metaproxy/metaproxy/codec"
)

// Active health checking, as Envoy's HealthCheckerImplBase: one session
// (goroutine) per host checks it every interval, and consecutive results
// set or clear the host's FailedActiveHC flag. The checks dial with Go's
// net package directly.

// maxHCBuffer bounds the bytes a check keeps while it waits for its answer
// (the TCP receive blocks, the probe's answer frame).
const maxHCBuffer = 64 << 10

// aLongTimeAgo is a deadline in the past: setting it on a connection makes
// its blocked reads and writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// healthChecker runs the active health checks of one cluster.
type healthChecker struct {
	c   *Cluster
	cfg HealthCheck // with the defaults applied

	wg       sync.WaitGroup // the sessions' goroutines
	mu       sync.Mutex     // guards sessions, closed and every session's counted
	sessions map[*Host]*hcSession
	closed   bool
}

// hcSession checks one host. Its fields below cancel are owned by its
// goroutine.
type hcSession struct {
	hc     *healthChecker
	h      *Host
	cancel context.CancelFunc
	// counted says whether the host is counted in the HealthCheckHealthy
	// gauge (guarded by hc.mu).
	counted bool

	first               bool   // the host has not been checked yet
	successes, failures uint32 // consecutive results
	conn                net.Conn
	codec               codec.Codec // the probe codec of conn
	buf                 []byte      // bytes read from conn, not consumed
	id                  uint64      // the last probe's id
	scratch             [4096]byte
	msg                 codec.Message
}

// hcResult is the outcome of one check.
type hcResult struct {
	ok      bool
	network bool   // a failure to connect, a timeout or a broken connection
	reason  string // why it failed
}

// hcTransition is what a check did to the host's health (Envoy's
// HealthTransition).
type hcTransition uint8

const (
	hcUnchanged hcTransition = iota
	hcPending
	hcChanged
)

func newHealthChecker(c *Cluster, cfg *HealthCheck) *healthChecker {
	hc := &healthChecker{c: c, cfg: *cfg, sessions: map[*Host]*hcSession{}}
	d := &hc.cfg
	if d.Timeout <= 0 {
		d.Timeout = c.cfg.ConnectTimeout
		if d.Timeout <= 0 {
			d.Timeout = DefaultConnectTimeout
		}
	}
	if d.NoTrafficInterval <= 0 {
		d.NoTrafficInterval = d.Interval
	}
	if d.UnhealthyInterval <= 0 {
		d.UnhealthyInterval = d.Interval
	}
	if d.UnhealthyEdgeInterval <= 0 {
		d.UnhealthyEdgeInterval = d.UnhealthyInterval
	}
	if d.HealthyEdgeInterval <= 0 {
		d.HealthyEdgeInterval = d.Interval
	}
	// A zero threshold would never be reached (Envoy compares a
	// pre-incremented count with it): take it as 1.
	d.UnhealthyThreshold = max(d.UnhealthyThreshold, 1)
	d.HealthyThreshold = max(d.HealthyThreshold, 1)
	return hc
}

// update starts checking the hosts of hosts that are not checked yet and
// stops checking those no longer in it. It is called with c.mu held: it
// does not wait for anything.
func (hc *healthChecker) update(hosts []*Host) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.closed {
		return
	}
	in := make(map[*Host]bool, len(hosts))
	for _, h := range hosts {
		in[h] = true
		if _, ok := hc.sessions[h]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		s := &hcSession{hc: hc, h: h, cancel: cancel, first: true}
		hc.sessions[h] = s
		hc.wg.Add(1)
		go s.run(ctx)
	}
	for h, s := range hc.sessions {
		if !in[h] {
			hc.dropLocked(s)
		}
	}
}

// dropLocked stops s, without waiting for its goroutine, and takes its
// host out of the healthy gauge. hc.mu is held.
func (hc *healthChecker) dropLocked(s *hcSession) {
	s.cancel()
	delete(hc.sessions, s.h)
	if s.counted {
		s.counted = false
		hc.c.stats.HealthCheckHealthy.Add(-1)
	}
}

// close stops every check and waits for the checks' goroutines to end.
func (hc *healthChecker) close() {
	hc.mu.Lock()
	hc.closed = true
	for _, s := range hc.sessions {
		hc.dropLocked(s)
	}
	hc.mu.Unlock()
	hc.wg.Wait()
}

// recount puts s's host in the healthy gauge or takes it out, as its flag
// now says, unless s was stopped.
func (s *hcSession) recount() {
	healthy := s.h.flags.Load()&FailedActiveHC == 0
	hc := s.hc
	hc.mu.Lock()
	defer hc.mu.Unlock()
	if hc.sessions[s.h] != s || s.counted == healthy {
		return
	}
	s.counted = healthy
	if healthy {
		hc.c.stats.HealthCheckHealthy.Add(1)
	} else {
		hc.c.stats.HealthCheckHealthy.Add(-1)
	}
}

func (s *hcSession) run(ctx context.Context) {
	defer s.hc.wg.Done()
	defer s.closeConn()
	timer := time.NewTimer(hcJitter(s.hc.cfg.InitialJitter))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res := s.safeCheck(ctx)
		if ctx.Err() != nil {
			return // stopped during the check: not a result
		}
		timer.Reset(s.record(res))
	}
}

// record counts the result of a check, changes the host's health as Envoy
// does and returns the time to the next check.
func (s *hcSession) record(res hcResult) time.Duration {
	hc := s.hc
	c, cfg := hc.c, &hc.cfg
	c.stats.HealthCheckAttempt.Add(1)
	failed := s.h.flags.Load()&FailedActiveHC != 0
	tr := hcUnchanged
	if res.ok {
		c.stats.HealthCheckSuccess.Add(1)
		s.failures = 0
		if failed {
			// A host's first result makes it healthy at once, as Envoy.
			if s.first {
				tr = hcChanged
			} else if s.successes++; s.successes == cfg.HealthyThreshold {
				tr = hcChanged
			} else {
				tr = hcPending
			}
			if tr == hcChanged && c.setHealth(s.h, FailedActiveHC, false) {
				reason := fmt.Sprintf("%d consecutive successful checks", s.successes)
				if s.first {
					reason = "first check passed"
				}
				c.log.Info("health check: host is healthy", "host", s.h.Addr, "reason", reason)
			}
		}
		c.activeCheckPassed(s.h)
	} else {
		c.stats.HealthCheckFailure.Add(1)
		if res.network {
			c.stats.HealthCheckNetworkFailure.Add(1)
		}
		s.successes = 0
		if !failed {
			if s.failures++; s.failures == cfg.UnhealthyThreshold {
				tr = hcChanged
				if c.setHealth(s.h, FailedActiveHC, true) {
					c.log.Info("health check: host is unhealthy", "host", s.h.Addr,
						"reason", fmt.Sprintf("%s (%d consecutive failed checks)", res.reason, s.failures))
				}
			} else {
				tr = hcPending
			}
		}
		c.log.Debug("health check failed", "host", s.h.Addr, "reason", res.reason)
	}
	s.first = false
	s.recount()
	return hc.interval(s.h.flags.Load()&FailedActiveHC != 0, tr)
}

// interval is the time to the next check of a host (unhealthy or not, tr
// what the last check did), jittered.
func (hc *healthChecker) interval(unhealthy bool, tr hcTransition) time.Duration {
	cfg := &hc.cfg
	var base time.Duration
	switch {
	case hc.c.stats.UpstreamRqTotal.Load() == 0:
		base = cfg.NoTrafficInterval
	case unhealthy && tr == hcChanged:
		base = cfg.UnhealthyEdgeInterval
	case unhealthy:
		base = cfg.UnhealthyInterval
	case tr == hcChanged:
		base = cfg.HealthyEdgeInterval
	default:
		base = cfg.Interval
	}
	pct := min(float64(base)*float64(cfg.IntervalJitterPercent)/100, 1<<62) // no overflow
	d := base + hcJitter(cfg.IntervalJitter) + hcJitter(time.Duration(pct))
	return max(d, time.Millisecond) // Envoy's floor
}

// hcJitter returns a random duration in [0, d).
func hcJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

func (s *hcSession) closeConn() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.codec, s.buf = nil, nil, s.buf[:0]
	}
}

// safeCheck runs a check; a panic (in a codec) fails it.
func (s *hcSession) safeCheck(ctx context.Context) (res hcResult) {
	defer func() {
		if r := recover(); r != nil {
			s.closeConn()
			res = hcResult{reason: fmt.Sprintf("panic: %v", r)}
			s.hc.c.log.Error("health check panicked", "host", s.h.Addr, "reason", res.reason)
		}
	}()
	res = s.check(ctx)
	if !res.ok || !s.hc.cfg.ReuseConnection {
		s.closeConn()
	}
	return res
}

// check runs one check within the configured timeout.
func (s *hcSession) check(ctx context.Context) hcResult {
	cfg := &s.hc.cfg
	deadline := time.Now().Add(cfg.Timeout)
	var tcpSend []byte
	if cfg.TCP != nil {
		tcpSend = cfg.TCP.Send
	}
	var prober codec.Prober
	if cfg.TCP == nil {
		if !cfg.Codec || cfg.Prober == nil {
			return hcResult{reason: "no health checker: neither tcp_health_check nor a codec probe"}
		}
		if s.conn == nil || s.codec == nil {
			s.closeConn()
			s.codec = cfg.Prober.NewCodec()
		}
		var ok bool
		if prober, ok = s.codec.(codec.Prober); !ok {
			return hcResult{reason: fmt.Sprintf("codec %s cannot probe hosts (no codec.Prober)", cfg.ProberName)}
		}
	}
	if s.conn == nil {
		d := net.Dialer{Deadline: deadline}
		conn, err := d.DialContext(ctx, "tcp", s.h.Addr)
		if err != nil {
			return netFailure("connect", err)
		}
		s.conn = conn
	}
	conn := s.conn
	if err := conn.SetDeadline(deadline); err != nil {
		return netFailure("set deadline", err)
	}
	// Stopping the session unblocks its reads and writes.
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })()

	if prober != nil {
		return s.probe(conn, prober)
	}
	tcp := cfg.TCP
	if len(tcpSend) == 0 {
		// Nothing to send, nothing would ask a reused connection for a new
		// answer: a connect-only check (or one waiting for what the server
		// says first) holds no connection.
		defer s.closeConn()
	} else if _, err := conn.Write(tcpSend); err != nil {
		return netFailure("write", err)
	}
	if len(tcp.Receive) == 0 {
		return hcResult{ok: true}
	}
	s.buf = s.buf[:0]
	for !matchBlocks(s.buf, tcp.Receive) {
		if len(s.buf) > maxHCBuffer {
			return hcResult{reason: fmt.Sprintf("no match for the receive payloads in %d bytes", len(s.buf))}
		}
		if err := s.read(conn); err != nil {
			return netFailure("read", err)
		}
	}
	s.buf = s.buf[:0] // the answer is consumed, as Envoy drains it
	return hcResult{ok: true}
}

// read appends what conn has to s.buf.
func (s *hcSession) read(conn net.Conn) error {
	n, err := conn.Read(s.scratch[:])
	s.buf = append(s.buf, s.scratch[:n]...)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// probe writes a probe request and waits for its answer. Frames that do
// not answer it are skipped; the server's own heartbeats are answered.
func (s *hcSession) probe(conn net.Conn, p codec.Prober) hcResult {
	s.id++
	id := s.id
	if _, err := conn.Write(p.ProbeRequest(nil, id)); err != nil {
		return netFailure("write", err)
	}
	for {
		n, err := s.codec.Split(s.buf)
		if err != nil {
			return hcResult{reason: fmt.Sprintf("bad answer: %v", err)}
		}
		if n == 0 {
			if len(s.buf) > maxHCBuffer {
				return hcResult{reason: fmt.Sprintf("no answer frame in %d bytes", len(s.buf))}
			}
			if err := s.read(conn); err != nil {
				return netFailure("read", err)
			}
			continue
		}
		if n > len(s.buf) {
			return hcResult{reason: fmt.Sprintf("bad answer: the codec split %d bytes of %d", n, len(s.buf))}
		}
		frame := s.buf[:n:n]
		msg := &s.msg
		msg.Reset()
		msg.Frame = frame
		err = s.codec.Decode(frame, msg)
		kind, mid, status, hbReq := msg.Kind, msg.ID, msg.Status, msg.HeartbeatRequest
		var reply []byte
		if err == nil && kind == codec.KindHeartbeat && hbReq {
			reply = s.codec.HeartbeatReply(nil, msg)
		}
		// The frame is done with: drop it from the buffer.
		s.buf = s.buf[:copy(s.buf, s.buf[n:])]
		msg.Reset()
		switch {
		case err != nil:
			return hcResult{reason: fmt.Sprintf("bad answer: %v", err)}
		case len(reply) > 0:
			// The server's own heartbeat: answer it, as a client would.
			if _, err := conn.Write(reply); err != nil {
				return netFailure("write", err)
			}
		case (kind == codec.KindHeartbeat && !hbReq || kind == codec.KindResponse) && mid == id:
			if status == codec.StatusServerFailure {
				return hcResult{reason: "the probe was answered with a server failure"}
			}
			return hcResult{ok: true}
		}
	}
}

// netFailure is the result of a failed network operation.
func netFailure(op string, err error) hcResult {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return hcResult{network: true, reason: op + ": timeout"}
	case errors.Is(err, io.EOF):
		return hcResult{network: true, reason: op + ": connection closed by the host"}
	}
	return hcResult{network: true, reason: fmt.Sprintf("%s: %v", op, err)}
}

// matchBlocks reports whether buf holds every block of want in order, each
// after the end of the previous one (Envoy's PayloadMatcher: not
// necessarily adjacent).
func matchBlocks(buf []byte, want [][]byte) bool {
	for _, w := range want {
		i := bytes.Index(buf, w)
		if i < 0 {
			return false
		}
		buf = buf[i+len(w):]
	}
	return true
}
