package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/store"
)

// TestMultiGetBackPressure: a multi-get of large values to a client that
// reads slowly arrives byte for byte, in order, while the server holds at
// most a bounded amount of it: under the event loop the retrieval stops
// while its replies wait for the socket, and large values go to the
// socket from the value buffer.
func TestMultiGetBackPressure(t *testing.T) {
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			srv, addr := startDriver(t, loop, 1<<20)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(time.Minute))
			r := bufio.NewReader(c)
			vals := make([]string, 8)
			for i := range vals {
				vals[i] = strings.Repeat(string(rune('a'+i)), 300_000+i)
				fmt.Fprintf(c, "set k%d %d 0 %d\r\n%s\r\n", i, i, len(vals[i]), vals[i])
				if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
					t.Fatalf("set: %q %v", line, err)
				}
			}
			var req, want bytes.Buffer
			req.WriteString("get")
			for n := range 64 {
				i := n % len(vals)
				fmt.Fprintf(&req, " k%d small", i)
				fmt.Fprintf(&want, "VALUE k%d %d %d\r\n%s\r\n", i, i, len(vals[i]), vals[i])
			}
			req.WriteString(" " + strings.Repeat("x", 251) + "\r\nget k0\r\n") // a bad key ends the line
			want.WriteString("CLIENT_ERROR bad command line format\r\n")
			fmt.Fprintf(&want, "VALUE k0 0 %d\r\n%s\r\nEND\r\n", len(vals[0]), vals[0])
			// memcached drops the replies not yet sent before the error: all
			// were sent here, as the retrieval waited for each to leave.
			io.WriteString(c, req.String())
			got := make([]byte, 0, want.Len())
			buf := make([]byte, 64<<10)
			peak := int64(0)
			for len(got) < want.Len() {
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					t.Fatalf("after %d of %d bytes: %v", len(got), want.Len(), err)
				}
				if len(got)%(1<<20) < n {
					time.Sleep(20 * time.Millisecond) // a slow reader
				}
				peak = max(peak, srv.Stats().ConnMem.ResponseBytes)
			}
			if !bytes.Equal(got, want.Bytes()) {
				i := 0
				for i < len(got) && got[i] == want.Bytes()[i] {
					i++
				}
				t.Fatalf("replies differ at byte %d of %d: %q", i, want.Len(), got[i:min(len(got), i+80)])
			}
			if loop && peak > 2<<20 {
				t.Errorf("reply buffers peaked at %d bytes for 19 MB of replies", peak)
			}
		})
	}
}

// TestUnreadRepliesBounded: under the event loop, connections that ask
// for large values and read nothing hold at most about the connections'
// memory limit between them (each used to hold its first value whatever
// the others held: 100 connections held 83 MB), those whose replies
// wait unread through a spell past the limit are closed, and a client
// that was served before gets its values meanwhile.
func TestUnreadRepliesBounded(t *testing.T) {
	const size, hogs, limit = 1_000_000, 100, 2 << 20
	st, err := store.New(store.Config{MaxItemSize: 1 << 20, MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{EventLoop: true, Loops: 1, MaxItemSize: 1 << 20, ConnMemLimit: limit}, Local{st})
	if err != nil {
		t.Fatal(err)
	}
	// Small send buffers (accepted sockets inherit the listener's), so
	// that the kernel takes little of each value, whatever its memory.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10) })
		return nil
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv, ln)
	val := strings.Repeat("v", size)
	for i := range 4 {
		if res, _ := st.Set(fmt.Appendf(nil, "big%d", i), []byte(val), &store.SetOptions{}); res != store.Stored {
			t.Fatalf("set: %v", res)
		}
	}
	old := dial(t, addr)
	old.SetDeadline(time.Now().Add(time.Minute))
	oldR := bufio.NewReaderSize(old, 1<<20)
	get := func(key string) time.Duration {
		start := time.Now()
		fmt.Fprintf(old, "get %s\r\n", key)
		if line, err := oldR.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VALUE "+key) {
			t.Fatalf("get %s: %q %v", key, line, err)
		}
		if _, err := oldR.Discard(size + 2 + len("END\r\n")); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	get("big0")
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	var conns []net.Conn
	for range hogs {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		io.WriteString(c, strings.Repeat("get big0\r\nget big1\r\nget big2\r\nget big3\r\n", 2))
	}
	var peak int64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		peak = max(peak, srv.Stats().ConnMem.ResponseBytes)
		time.Sleep(5 * time.Millisecond)
	}
	// The limit, a value started just before it was passed, and one base
	// buffer per connection.
	if bound := int64(limit + 2*size + (hogs+2)*outBase); peak > bound {
		t.Errorf("replies held %d bytes at the peak, want at most %d (limit %d)", peak, bound, limit)
	}
	if took := get("big1"); took > 2*time.Second {
		t.Errorf("a client served before waited %v for a value", took)
	}
	// Only retrievals wait: a new connection's set and stats do not.
	start := time.Now()
	if lines, err := testutil.TextLines(addr, "set fresh 0 0 1\r\nx\r\n", 1); err != nil || lines[0] != "STORED" {
		t.Errorf("a set during the attack: %q %v", lines, err)
	}
	if _, err := testutil.TextLines(addr, "stats\r\n", 3); err != nil {
		t.Errorf("stats during the attack: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a set and stats during the attack took %v", took)
	}
	if n := srv.Stats().ConnMem.Evicted; n == 0 {
		t.Errorf("no connection closed for replies left unread")
	}
	t.Logf("peak replies held %d bytes (limit %d); %d connections closed", peak, limit, srv.Stats().ConnMem.Evicted)
}
