//go:build linux

package uring

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair is a loopback TCP connection: fd is the sending side's socket
// (non-blocking, as an event loop's), peer the receiving side.
type pair struct {
	fd   int32
	peer net.Conn
}

func pairs(t testing.TB, n int) []pair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out []pair
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		f, err := c.(*net.TCPConn).File() // a duplicate, blocking: made non-blocking below
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		unix.SetNonblock(fd, true)
		t.Cleanup(func() { unix.Close(fd); s.Close() })
		out = append(out, pair{fd: int32(fd), peer: s})
	}
	return out
}

func newRing(t testing.TB, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries)
	if err != nil {
		t.Skipf("no io_uring here: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestSendDelivers: more sends than the ring holds, to distinct sockets,
// each with its own bytes, arrive whole and in order; an empty buffer is
// skipped; a closed descriptor fails alone.
func TestSendDelivers(t *testing.T) {
	r := newRing(t, 4)
	ps := pairs(t, 10)
	var ops []Op
	for i, p := range ps {
		for j := range 3 { // three sends per socket in one call: their order holds
			ops = append(ops, Op{FD: p.fd, Buf: bytes.Repeat([]byte{byte('a' + i)}, 100+j)})
		}
	}
	ops = append(ops, Op{FD: ps[0].fd}, Op{FD: 1 << 20, Buf: []byte("x")})
	if err := r.Send(ops); err != nil {
		t.Fatal(err)
	}
	for i, op := range ops[:30] {
		if op.Res != int32(len(op.Buf)) {
			t.Errorf("op %d: Res %d, want %d", i, op.Res, len(op.Buf))
		}
	}
	if got := ops[30].Res; got != 0 {
		t.Errorf("empty op: Res %d", got)
	}
	if got := ops[31].Res; got != -int32(unix.EBADF) {
		t.Errorf("bad descriptor: Res %d, want -EBADF", got)
	}
	for i, p := range ps {
		want := bytes.Repeat([]byte{byte('a' + i)}, 300+3)
		got := make([]byte, len(want))
		p.peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p.peer, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("socket %d: read %q, %v", i, got[:10], err)
		}
	}
}

// TestSendNeverWaits: to a socket whose reader reads nothing, sends take
// what fits, then nothing (-EAGAIN), each returning at once: a send the
// kernel parked to retry would hold Send until the reader read.
func TestSendNeverWaits(t *testing.T) {
	r := newRing(t, 8)
	p := pairs(t, 1)[0]
	big := make([]byte, 1<<20)
	var total int
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatalf("200 MB taken by a socket nobody reads")
		}
		ops := []Op{{FD: p.fd, Buf: big}}
		start := time.Now()
		if err := r.Send(ops); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("a send waited %s", d)
		}
		if ops[0].Res == -int32(syscall.EAGAIN) {
			break
		}
		if ops[0].Res <= 0 {
			t.Fatalf("Res %d", ops[0].Res)
		}
		total += int(ops[0].Res)
	}
	if total == 0 {
		t.Fatal("the socket took nothing")
	}
	// What was taken arrives once the reader reads.
	got := make([]byte, total)
	p.peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(p.peer, got); err != nil {
		t.Fatalf("read %d of the %d bytes taken: %v", len(got), total, err)
	}
}

// TestBrokenRingRefuses: after Close, Send fails rather than submitting
// entries to a ring that is gone; every op is marked cancelled.
func TestBrokenRingRefuses(t *testing.T) {
	r := newRing(t, 4)
	p := pairs(t, 1)[0]
	r.broken = errTest
	ops := []Op{{FD: p.fd, Buf: []byte("a")}, {FD: p.fd}}
	if err := r.Send(ops); err != errTest {
		t.Fatalf("Send on a broken ring: %v", err)
	}
	if ops[0].Res != -int32(unix.ECANCELED) || ops[1].Res != 0 {
		t.Fatalf("Res %d, %d", ops[0].Res, ops[1].Res)
	}
}

var errTest = io.ErrClosedPipe

// BenchmarkSend compares, on the sending thread, 32 send(2) calls with
// one Send of the same 32 sends (130 bytes each, loopback sockets whose
// readers keep up).
func BenchmarkSend(b *testing.B) {
	r := newRing(b, 64)
	ps := pairs(b, 32)
	for _, p := range ps {
		go io.Copy(io.Discard, p.peer)
	}
	buf := make([]byte, 130)
	ops := make([]Op, len(ps))
	b.Run("send(2)", func(b *testing.B) {
		for b.Loop() {
			for _, p := range ps {
				for {
					if _, err := unix.SendmsgN(int(p.fd), buf, nil, nil, unix.MSG_NOSIGNAL); err != unix.EAGAIN {
						break
					}
				}
			}
		}
	})
	b.Run("uring", func(b *testing.B) {
		for b.Loop() {
			for i, p := range ps {
				ops[i] = Op{FD: p.fd, Buf: buf}
			}
			if err := r.Send(ops); err != nil {
				b.Fatal(err)
			}
		}
	})
}
