package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/metaproxy/metaproxy/test/harness/load"
)

// The open-loop mode (-conns N -rate R): R calls/s in total, spread evenly
// over N connections opened before the run. Call k is due at k/R seconds
// after the start and goes out on connection k mod N, whatever happened to
// earlier calls, so every connection sends on its own fixed schedule (one
// call each N/R seconds) and the whole stream is one call each 1/R seconds.
// A call's latency runs from its due time, not from when it was written:
// a late send (the generator or the machine was busy) counts against the
// call, and a slow reply does not thin out the load behind it (no
// coordinated omission). Connections carry several calls at once when the
// replies are slower than the schedule (one connection at 5,000 calls/s
// always does).
//
// The calls are Apache Thrift sayHello calls, framed transport, binary
// protocol: the frame the Apache Go client (0.17) writes, copied from
// codecs/thrift/testdata/framed-binary.txt with its sequence id replaced
// by the call's number. The peer is a real Apache Thrift server (through
// the proxy under test); each reply must be a sayHello REPLY with a
// success value, on the connection its call was sent on. Pipelined calls
// need the proxy's Thrift codec set with concurrent_clients: true.

// thriftHelloFrame is sayHello("bob"), sequence id 1, framed binary: the
// first request of codecs/thrift/testdata/framed-binary.txt, written by
// Apache Thrift v0.17.0 (TestThriftHelloFrameIsGolden checks it).
const thriftHelloFrame = "0000001f800100010000000873617948656c6c6f000000010b000100000003626f6200"

// thriftSeqOffset is where the sequence id sits in thriftHelloFrame: after
// the frame length, the version word and the length-prefixed "sayHello".
const thriftSeqOffset = 4 + 4 + 4 + len("sayHello")

// openResult is the open-loop summary, one JSON line: load.Result's fields
// (latencies from the due time; rps is the measured replies over the
// measured phase) and the schedule's own figures.
type openResult struct {
	load.Result
	Conns int     `json:"conns"`
	Rate  float64 `json:"rate"`
	// Sent is the measured calls written; Lost those unanswered when the
	// generator gave up waiting (callTimeout after the last send).
	Sent int64 `json:"sent"`
	Lost int64 `json:"lost"`
	// AllOK counts every call answered, the warm-up's and the first check
	// call included: a fresh proxy has taken at least that many.
	AllOK int64 `json:"all_ok"`
	// SendP99us is the p99 of latency from the actual write instead of the
	// due time; LagP99us and LagMaxUs are how late the writes were.
	SendP99us int64 `json:"send_p99_us"`
	LagP99us  int64 `json:"lag_p99_us"`
	LagMaxUs  int64 `json:"lag_max_us"`
}

// openLoop is one open-loop run's state, shared by the pacer and the
// per-connection readers.
type openLoop struct {
	conns    []net.Conn
	n        int64 // len(conns)
	start    time.Time
	interval float64 // ns between two calls
	first    int64   // the first measured call
	end      int64   // one past the last call

	sentAt   []atomic.Int64 // per call: ns after start it was written, +1 (0: not sent)
	lat      []atomic.Int64 // per call: ns from due to reply, +1 (0: no reply yet)
	replies  atomic.Int64   // measured calls answered
	all      atomic.Int64   // every call answered
	errs     atomic.Int64
	firstErr atomic.Value
}

func (o *openLoop) due(k int64) time.Duration { return time.Duration(float64(k) * o.interval) }

func (o *openLoop) fail(err error) {
	o.errs.Add(1)
	o.firstErr.CompareAndSwap(nil, err.Error())
}

// runOpen runs the open-loop mode: it opens conns connections to addr,
// sends rate calls/s for warmup+d, prints MEASURING when the measured
// phase's first call is due and the summary once every measured call is
// answered (or given up on).
func runOpen(proto, addr string, conns int, rate float64, warmup, d time.Duration) error {
	if proto != "thrift" {
		return fmt.Errorf("-conns/-rate: only -proto thrift has an open-loop mode")
	}
	if conns < 1 || rate <= 0 || d <= 0 {
		return fmt.Errorf("want -conns >= 1, -rate > 0 and -d > 0")
	}
	if err := raiseNoFile(conns + 64); err != nil {
		return err
	}
	frame, _ := hex.DecodeString(thriftHelloFrame)
	first := int64(warmup.Seconds() * rate)
	total := first + int64(d.Seconds()*rate)
	if total >= 1<<31 {
		return fmt.Errorf("too many calls for Thrift's 32-bit sequence ids")
	}
	o := &openLoop{n: int64(conns), interval: 1e9 / rate, first: first, end: total,
		sentAt: make([]atomic.Int64, total), lat: make([]atomic.Int64, total)}
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, callTimeout)
		if err != nil {
			o.closeAll()
			return fmt.Errorf("connection %d: %w", i, err)
		}
		o.conns = append(o.conns, c)
	}
	defer o.closeAll()
	// A broken setup fails before the load: one call on connection 0,
	// answered as the run's replies will be.
	if err := checkThrift(o.conns[0], frame); err != nil {
		return fmt.Errorf("first call: %w", err)
	}
	var readers sync.WaitGroup
	bufSize := 512
	if conns <= 100 {
		bufSize = 32 << 10
	}
	o.start = time.Now()
	for i, c := range o.conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			o.read(int64(i), bufio.NewReaderSize(c, bufSize))
		}()
	}
	lags := o.pace(frame)
	// Every measured call is answered, or callTimeout has passed since the
	// last was sent.
	want := total - first
	limit := time.Now().Add(callTimeout)
	for o.measuredReplies() < want && time.Now().Before(limit) {
		time.Sleep(5 * time.Millisecond)
	}
	r := o.summary(conns, rate, d, lags)
	fmt.Println(mustJSON(r))
	o.closeAll()
	readers.Wait()
	return nil
}

// pace writes every call at its due time from one goroutine on its own
// thread: nanosleep with a 1 µs timer slack wakes within some 30 µs, where
// Go's timers here wake on the millisecond. It prints MEASURING when the
// first measured call is due and returns how late each measured call was
// written.
func (o *openLoop) pace(frame []byte) []time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// PR_SET_TIMERSLACK (29): this thread's sleeps end within 1 µs of
	// their time, not the default 50 µs.
	syscall.RawSyscall(syscall.SYS_PRCTL, 29, 1000, 0)
	buf := make([]byte, len(frame))
	copy(buf, frame)
	lags := make([]time.Duration, 0, o.end-o.first)
	for k := int64(0); k < o.end; k++ {
		due := o.due(k)
		if k == o.first {
			// Printed before the call is due, so that the orchestrator's
			// CPU sample comes before the measured calls.
			if wait := due - time.Since(o.start); wait > 0 {
				sleep(wait)
			}
			fmt.Println("MEASURING")
		}
		if wait := due - time.Since(o.start); wait > 0 {
			sleep(wait)
		}
		binary.BigEndian.PutUint32(buf[thriftSeqOffset:], uint32(k))
		now := time.Since(o.start)
		o.sentAt[k].Store(int64(now) + 1)
		if k >= o.first {
			lags = append(lags, now-due)
		}
		if _, err := o.conns[k%o.n].Write(buf); err != nil {
			o.fail(fmt.Errorf("write call %d: %w", k, err))
		}
	}
	return lags
}

func sleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}

// read takes the replies of connection i until it is closed.
func (o *openLoop) read(i int64, r *bufio.Reader) {
	var body []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return // closed: by closeAll, or by the proxy (the calls are lost)
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > 1<<20 {
			o.fail(fmt.Errorf("connection %d: frame of %d bytes", i, size))
			return
		}
		if cap(body) < int(size) {
			body = make([]byte, size)
		}
		body = body[:size]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		at := time.Since(o.start)
		seq, err := parseThriftReply(body)
		k := int64(seq)
		switch {
		case err != nil:
			o.fail(fmt.Errorf("connection %d: %w", i, err))
			continue
		case k < 0 || k >= o.end || o.sentAt[k].Load() == 0:
			o.fail(fmt.Errorf("connection %d: reply to call %d, never sent", i, k))
			continue
		case k%o.n != i:
			o.fail(fmt.Errorf("connection %d: reply to call %d, sent on connection %d", i, k, k%o.n))
			continue
		}
		if !o.lat[k].CompareAndSwap(0, int64(at-o.due(k))+1) {
			o.fail(fmt.Errorf("connection %d: second reply to call %d", i, k))
			continue
		}
		o.all.Add(1)
		if k >= o.first {
			o.replies.Add(1)
		}
	}
}

func (o *openLoop) measuredReplies() int64 { return o.replies.Load() + o.errs.Load() }

// summary sums up the measured calls (those due in the measured phase).
func (o *openLoop) summary(conns int, rate float64, d time.Duration, lags []time.Duration) openResult {
	var fromDue, fromSend []time.Duration
	r := openResult{Conns: conns, Rate: rate}
	for k := o.first; k < o.end; k++ {
		sent := o.sentAt[k].Load()
		if sent == 0 {
			continue
		}
		r.Sent++
		lat := o.lat[k].Load()
		if lat == 0 {
			r.Lost++
			continue
		}
		l := time.Duration(lat - 1)
		fromDue = append(fromDue, l)
		fromSend = append(fromSend, l+o.due(k)-time.Duration(sent-1))
	}
	r.OK = int64(len(fromDue))
	r.AllOK = o.all.Load() + 1 // + the check call
	r.Errors = o.errs.Load() + r.Lost
	if fe, ok := o.firstErr.Load().(string); ok {
		r.FirstError = fe
	} else if r.Lost > 0 {
		r.FirstError = fmt.Sprintf("%d calls unanswered after %v", r.Lost, callTimeout)
	}
	r.RPS = float64(r.OK) / d.Seconds()
	if len(fromDue) > 0 {
		sortDurations(fromDue)
		sortDurations(fromSend)
		r.P50us = pct(fromDue, 50).Microseconds()
		r.P90us = pct(fromDue, 90).Microseconds()
		r.P99us = pct(fromDue, 99).Microseconds()
		r.MaxUs = fromDue[len(fromDue)-1].Microseconds()
		r.SendP99us = pct(fromSend, 99).Microseconds()
	}
	if len(lags) > 0 {
		sortDurations(lags)
		r.LagP99us = pct(lags, 99).Microseconds()
		r.LagMaxUs = lags[len(lags)-1].Microseconds()
	}
	return r
}

func (o *openLoop) closeAll() {
	for _, c := range o.conns {
		c.Close()
	}
}

// checkThrift makes one call on c and waits for its reply.
func checkThrift(c net.Conn, frame []byte) error {
	c.SetDeadline(time.Now().Add(callTimeout))
	defer c.SetDeadline(time.Time{})
	call := append([]byte(nil), frame...)
	binary.BigEndian.PutUint32(call[thriftSeqOffset:], 0x7fffffff)
	if _, err := c.Write(call); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > 1<<20 {
		return fmt.Errorf("frame of %d bytes", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	seq, err := parseThriftReply(body)
	if err == nil && seq != 0x7fffffff {
		err = fmt.Errorf("reply to sequence id %d, want %d", seq, 0x7fffffff)
	}
	return err
}

// parseThriftReply checks that body (a frame without its length) is a
// strict binary sayHello REPLY whose result is the success string, and
// returns its sequence id.
func parseThriftReply(body []byte) (int32, error) {
	const name = "sayHello"
	if len(body) < 4+4+len(name)+4+3 {
		return 0, fmt.Errorf("short reply frame (%d bytes)", len(body))
	}
	v := binary.BigEndian.Uint32(body)
	if v&0xffff0000 != 0x80010000 {
		return 0, fmt.Errorf("not a strict binary message: version word %#x", v)
	}
	if n := binary.BigEndian.Uint32(body[4:]); n != uint32(len(name)) || string(body[8:8+len(name)]) != name {
		return 0, errors.New("reply to another method than sayHello")
	}
	seq := int32(binary.BigEndian.Uint32(body[8+len(name):]))
	f := body[8+len(name)+4:]
	if t := v & 0xff; t != 2 { // 2: REPLY; 3 is EXCEPTION
		return seq, fmt.Errorf("call %d: message type %d, not REPLY%s", seq, t, exceptionMessage(f))
	}
	// The result struct's first field: id 0 (success), type 11 (string);
	// id 1 is the declared HelloError.
	if f[0] != 11 || f[1] != 0 || f[2] != 0 {
		return seq, fmt.Errorf("call %d: result field type %d id %d, not the success string", seq, f[0], int16(binary.BigEndian.Uint16(f[1:])))
	}
	return seq, nil
}

// exceptionMessage returns ": " and the message of a
// TApplicationException's fields (field 1, a string), or "".
func exceptionMessage(f []byte) string {
	if len(f) < 7 || f[0] != 11 || binary.BigEndian.Uint16(f[1:]) != 1 {
		return ""
	}
	n := int(binary.BigEndian.Uint32(f[3:]))
	if n < 0 || len(f) < 7+n {
		return ""
	}
	return fmt.Sprintf(": %q", f[7:7+n])
}

// raiseNoFile raises the soft limit on open files to the hard one, and
// fails if that is still below need.
func raiseNoFile(need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return err
		}
	}
	if l.Cur < uint64(need) {
		return fmt.Errorf("open files limited to %d, %d connections need %d (ulimit -n)", l.Cur, need-64, need)
	}
	return nil
}

func sortDurations(ds []time.Duration) { sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] }) }

// pct returns the p-th percentile of sorted (nearest rank), as load does.
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return sorted[i-1]
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	return string(b)
}
