// Package rawio reads and writes a non-blocking socket with raw system
// calls, waiting in Go's poller when it would block.
//
// A socket Go's poller manages never blocks a read or a write, yet net.Conn
// makes each one a system call the scheduler is told about (entering and
// leaving it). On a node that is often idle between requests, each such
// call after an idle spell wakes the scheduler's monitor thread, which
// then polls every 20 µs for a while: on a forwarding node, one more
// thread switch per request than the request itself needs. A raw call is
// the same read or write without that bookkeeping.
package rawio

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reader reads a socket with raw read(2) calls. One goroutine at a time.
type Reader struct {
	rc   syscall.RawConn
	p    []byte
	n    int
	err  error
	read func(uintptr) bool // r.read1, made once: Read allocates nothing
}

// NewReader returns a Reader for nc's socket, or nc itself when it has
// none (a TLS connection, a pipe). Deadlines set on nc apply.
func NewReader(nc net.Conn) io.Reader {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	r := &Reader{rc: rc}
	r.read = r.read1
	return r
}

// Read reads what the socket holds, waiting for some if it holds nothing.
// At the end of the stream it returns io.EOF.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.read)
	r.p = nil
	if err != nil {
		return 0, err
	}
	return r.n, r.err
}

func (r *Reader) read1(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch e {
		case 0:
			if n == 0 {
				r.err = io.EOF
			}
			r.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait in the poller
		default:
			r.err = e
			return true
		}
	}
}

// Write makes one raw write(2) of p to fd, a non-blocking socket, and
// returns what it took: 0 and a nil error when the socket is full
// (EAGAIN). For use inside syscall.RawConn.Write's callback, or with a
// descriptor the caller owns.
func Write(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, e
		}
	}
}
