//go:build linux

package standalone

import (
	"syscall"
	"unsafe"
)

// The event loops make only system calls that never block (their sockets,
// pipe and epoll fd are non-blocking, and epoll_wait is given no timeout),
// so they make them raw, without telling the scheduler. A system call the
// scheduler is told about (syscall.Read and the like) also wakes the
// runtime's sysmon thread whenever the process was wholly idle, and sysmon
// then polls every 20 µs for a millisecond: at tens of thousands of
// wake-ups a second that was a seventh of the proxy's CPU (see
// bench/README.md). A raw call that blocked would stall its P, which is why
// only these calls are raw.

var zeroByte byte

func bufPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return unsafe.Pointer(&zeroByte)
	}
	return unsafe.Pointer(&b[0])
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawRead is read(2) on a non-blocking fd.
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(bufPtr(b)), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking fd.
func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(bufPtr(b)), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// pollNow is epoll_wait(2) with a zero timeout: it returns the events ready
// now and never waits.
func pollNow(epfd int, events []syscall.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// epollCtl is epoll_ctl(2), which does not block.
func epollCtl(epfd, op, fd int, ev *syscall.EpollEvent) error {
	_, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd),
		uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}
