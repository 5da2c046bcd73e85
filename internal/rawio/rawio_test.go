package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		got <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-got
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestReader: a Reader waits for data that comes later, reads what is
// there, honours a read deadline, and ends with io.EOF when the writer
// closes; a connection without a socket is returned as is.
func TestReader(t *testing.T) {
	a, b := pair(t)
	r := NewReader(a)
	if _, ok := r.(*Reader); !ok {
		t.Fatalf("NewReader(TCP) = %T, want *Reader", r)
	}
	go func() {
		time.Sleep(50 * time.Millisecond) // the reader waits in the poller
		b.Write([]byte("hello"))
	}()
	buf := make([]byte, 16)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v; want hello", buf[:n], err)
	}
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	a.SetReadDeadline(time.Time{})
	b.Write([]byte("bye"))
	b.Close()
	if got, err := io.ReadAll(r); err != nil || string(got) != "bye" {
		t.Fatalf("ReadAll %q, %v; want bye, nil (io.EOF at the end)", got, err)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if r := NewReader(p1); r != io.Reader(p1) {
		t.Fatalf("NewReader(pipe) = %T, want the pipe itself", r)
	}
}

// TestWrite: Write takes what the socket takes and reports a full socket
// as 0 and no error, never blocking; a bad descriptor is an error.
func TestWrite(t *testing.T) {
	a, b := pair(t)
	rc, err := a.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	total, full := 0, false
	for i := 0; i < 256 && !full; i++ { // nobody reads b: the socket fills
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool { n, werr = Write(fd, chunk); return true }); err != nil {
			t.Fatal(err)
		}
		if werr != nil {
			t.Fatalf("write: %v", werr)
		}
		total += n
		full = n == 0
	}
	if !full {
		t.Fatalf("wrote %d bytes and the socket never filled", total)
	}
	got, err := io.ReadAll(io.LimitReader(b, int64(total)))
	if err != nil || len(got) != total {
		t.Fatalf("read back %d of %d bytes: %v", len(got), total, err)
	}
	if _, err := Write(^uintptr(0), chunk); err == nil {
		t.Fatal("write to a bad descriptor: no error")
	}
}
