//go:build linux

package standalone

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

// reactorSupported is true: Linux hosts connections on epoll event loops.
const reactorSupported = true

// loop is one event loop: a goroutine that waits on its own epoll fd (see
// run). Its sockets are never polled by Go's netpoller. Level-triggered, it
// reads each ready socket once into its buffer and hands the bytes to the
// connection's handler, flushes queued writes on EPOLLOUT, completes
// connects, and runs the tasks posted to it. Every event of a connection is
// reported from its loop's goroutine, in order, never concurrently.
type loop struct {
	id    int32 // 1, 2, ...: the worker of its connections (transport.Placed)
	epfd  int
	rc    syscall.RawConn // epfd in Go's netpoller
	wakeR int             // read end of the pipe that post writes to
	wakeW int
	buf   []byte
	gen   int32       // tells a connection from an earlier one on the same fd
	more  bool        // this batch may have left ready events behind (see run)
	moved atomic.Bool // watch changed a mask since the last poll (see watch)

	mu    sync.Mutex
	conns map[int32]*rconn
	tasks []func()
	woken bool
}

var (
	loopsOnce sync.Once
	loops     []*loop
	loopsErr  error
	loopNext  atomic.Uint32
)

// loopFor returns the loop for a new connection: round robin over
// min(GOMAXPROCS, NumCPU) loops started on first use.
func loopFor() (*loop, error) {
	loopsOnce.Do(func() {
		n := min(runtime.GOMAXPROCS(0), runtime.NumCPU())
		for range n {
			l, err := newLoop()
			if err != nil {
				loopsErr = err
				return
			}
			l.id = int32(len(loops) + 1)
			loops = append(loops, l)
			go l.run()
		}
	})
	if len(loops) == 0 {
		return nil, loopsErr
	}
	return loops[(loopNext.Add(1)-1)%uint32(len(loops))], nil
}

func newLoop() (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("pipe2", err)
	}
	l := &loop{epfd: epfd, wakeR: p[0], wakeW: p[1], buf: make([]byte, readChunk), conns: map[int32]*rconn{}}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p[0])}
	err = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p[0], &ev)
	if err == nil {
		err = syscall.SetNonblock(epfd, true)
	}
	if err != nil {
		syscall.Close(epfd)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// The file stays reachable from l.rc for the life of the process.
	l.rc, err = os.NewFile(uintptr(epfd), "epoll").SyscallConn()
	if err != nil {
		return nil, err
	}
	return l, nil
}

// add registers c, whose fd is set, for events. The loop may handle c, and
// even finish it, before add returns.
func (l *loop) add(c *rconn, events uint32) error {
	fd := c.fd
	l.mu.Lock()
	l.gen++
	c.gen = l.gen
	l.conns[int32(fd)] = c
	l.mu.Unlock()
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd), Pad: c.gen}
	if err := epollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.mu.Lock()
		delete(l.conns, int32(fd))
		l.mu.Unlock()
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// watch changes the events c waits for; c.mu is held or c is not shared.
//
// A change makes no edge when c's fd is still on the epoll ready list,
// where a level-triggered fd stays from the epoll_wait that reported it to
// the next one: epoll_ctl wakes waiters only for an fd not on that list
// (and an event outside the old mask made no edge either). A connect whose
// server spoke first is one: its EPOLLOUT was reported, the greeting is
// waiting, and the change to EPOLLIN announces nothing. So the loop polls
// once more after a change (moved); a change made off the loop's goroutine
// must also wake the loop (see rconn.Write).
func (l *loop) watch(c *rconn, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(c.fd), Pad: c.gen}
	err := epollCtl(l.epfd, syscall.EPOLL_CTL_MOD, c.fd, &ev)
	l.moved.Store(true)
	return os.NewSyscallError("epoll_ctl", err)
}

// post runs f on the loop's goroutine soon.
func (l *loop) post(f func()) {
	l.mu.Lock()
	l.tasks = append(l.tasks, f)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		_, _ = rawWrite(l.wakeW, []byte{1})
	}
}

func (l *loop) runTasks() {
	var b [64]byte
	for {
		if n, _ := rawRead(l.wakeR, b[:]); n < len(b) {
			break
		}
	}
	l.mu.Lock()
	tasks := l.tasks
	l.tasks, l.woken = nil, false
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
}

// run waits for events in Go's netpoller, on which the epoll fd itself is
// registered: a loop blocked in epoll_wait would hold its P in a system call
// and make the scheduler hand the P off and back at every wake-up. Ready
// events are taken with non-blocking epoll_waits until none is left.
//
// The netpoller watches the epoll fd edge-triggered, and the kernel wakes
// it at every event queued on our epoll fd, so a batch that left nothing
// behind needs no final, empty epoll_wait to be sure: when fewer events came
// than fit and no read filled the buffer (each socket was drained), any
// later event is a new edge. Only a full batch or a full read (l.more), or
// a changed mask (l.moved), may leave level-triggered readiness that no new
// edge announces.
func (l *loop) run() {
	events := make([]syscall.EpollEvent, 256)
	err := l.rc.Read(func(uintptr) bool {
		for {
			n, err := pollNow(l.epfd, events)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				panic(fmt.Sprintf("standalone: epoll_wait: %v", err))
			}
			if n == 0 {
				return false
			}
			l.more = n == len(events)
			l.dispatch(events[:n])
			if !l.more && !l.moved.Swap(false) {
				return false
			}
		}
	})
	panic(fmt.Sprintf("standalone: waiting for epoll events: %v", err))
}

func (l *loop) dispatch(events []syscall.EpollEvent) {
	for i := range events {
		ev := &events[i]
		if ev.Fd == int32(l.wakeR) {
			l.runTasks()
			continue
		}
		l.mu.Lock()
		c := l.conns[ev.Fd]
		l.mu.Unlock()
		// An event for a connection closed earlier in this batch may
		// name its fd, reused since: the generation tells.
		if c != nil && c.gen == ev.Pad {
			l.handle(c, ev.Events)
		}
	}
}

func (l *loop) handle(c *rconn, events uint32) {
	if c.dial != nil {
		l.connected(c)
		return
	}
	if events&syscall.EPOLLOUT != 0 && !l.flush(c) {
		return
	}
	if events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
		l.read(c)
	}
}

// read reads c once: a level-triggered loop comes back if more is waiting,
// so no read ever returns EAGAIN in the common case.
func (l *loop) read(c *rconn) {
	if c.closed.Load() {
		l.finish(c, nil)
		return
	}
	n, err := rawRead(c.fd, l.buf)
	switch {
	case n > 0:
		l.more = l.more || n == len(l.buf)
		c.onData(l.buf[:n])
		if c.closed.Load() {
			l.finish(c, nil)
		}
	case n == 0 && c.onReadClosed != nil && !c.halfClosed.Load():
		l.halfClose(c)
	case n == 0:
		l.finish(c, nil)
	case err == syscall.EAGAIN || err == syscall.EINTR:
	default:
		l.finish(c, os.NewSyscallError("read", err))
	}
}

// flush writes c's queued bytes on EPOLLOUT. It returns false when c is
// finished.
func (l *loop) flush(c *rconn) bool {
	c.mu.Lock()
	if len(c.out) == 0 || c.fd < 0 {
		c.mu.Unlock()
		return true
	}
	n, err := writeFd(c.fd, c.out)
	if err != nil {
		c.mu.Unlock()
		l.finish(c, err)
		return false
	}
	if c.out = c.out[n:]; len(c.out) > 0 {
		c.mu.Unlock()
		return true
	}
	c.out = c.out[:0]
	if cap(c.out) > 1<<20 {
		c.out = nil
	}
	err = l.watch(c, c.readEvents())
	closing := c.closing
	c.mu.Unlock()
	if err != nil || closing {
		l.finish(c, err)
		return false
	}
	return true
}

// halfClose stops reading c, whose peer sent FIN, and reports it; c stays
// open for writing until its handler closes it. Once both directions are
// shut the socket hangs up, which finishes it.
func (l *loop) halfClose(c *rconn) {
	c.mu.Lock()
	c.halfClosed.Store(true)
	events := c.readEvents()
	if len(c.out) > 0 {
		events |= syscall.EPOLLOUT
	}
	err := l.watch(c, events)
	c.mu.Unlock()
	if err != nil {
		l.finish(c, err)
		return
	}
	c.onReadClosed()
}

// finish closes c's socket and reports the closure once.
func (l *loop) finish(c *rconn, err error) {
	c.mu.Lock()
	fd := c.fd
	c.fd = -1
	c.closed.Store(true)
	c.out = nil
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	if fd < 0 {
		return
	}
	l.mu.Lock()
	delete(l.conns, int32(fd))
	l.mu.Unlock()
	_ = epollCtl(l.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	_ = syscall.Close(fd)
	if c.onClose != nil {
		c.onClose(err)
	}
}

// nop is a task that only wakes a loop.
func nop() {}
