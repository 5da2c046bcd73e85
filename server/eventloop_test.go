package server

import (
	"bufio"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/store"
)

// drivers names the two ways of serving connections, for tests that run
// under both.
var drivers = map[string]bool{"goroutine": false, "event loop": true}

// startDriver starts a server over a fresh store with the given driver and
// item size limit, and returns it with its address.
func startDriver(t *testing.T, eventLoop bool, maxItem int) (*Server, string) {
	t.Helper()
	st, err := store.New(store.Config{MaxItemSize: maxItem, MemoryLimit: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	storeDone := make(chan error, 1)
	go func() { storeDone <- st.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-storeDone
	})
	return serve(t, Config{EventLoop: eventLoop, MaxItemSize: maxItem}, Local{st})
}

func TestEventLoopServesConnections(t *testing.T) {
	srv, addr := startDriver(t, true, 0)
	c := dial(t, addr)
	io.WriteString(c, "set a 0 0 1\r\nx\r\nget a\r\n")
	r := bufio.NewReader(c)
	for _, want := range []string{"STORED\r\n", "VALUE a 0 1\r\n", "x\r\n", "END\r\n"} {
		if line, err := r.ReadString('\n'); err != nil || line != want {
			t.Fatalf("got %q, %v; want %q", line, err, want)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if want := max(1, runtime.GOMAXPROCS(0)-1); len(srv.loops) != want {
		t.Errorf("%d loops, want GOMAXPROCS-1 (%d)", len(srv.loops), want)
	}
	for c := range srv.conns {
		if c.nc != nil {
			t.Errorf("connection %d has a goroutine, want the event loop", c.id)
		}
	}
}

// valueReply is the reply to "get big" for a value of n bytes of b.
func valueReply(n int, b byte) string {
	return "VALUE big 0 " + strconv.Itoa(n) + "\r\n" + strings.Repeat(string(b), n) + "\r\nEND\r\n"
}

// TestSlowReader fills the socket towards a client that does not read:
// replies wait (partial writes, EPOLLOUT under the event loop) while other
// connections are served, then arrive whole, and a quit after them closes
// the connection only once they are out.
func TestSlowReader(t *testing.T) {
	t.Parallel()
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			const size = 4 << 20
			_, addr := startDriver(t, loop, 8<<20)
			slow := dial(t, addr)
			io.WriteString(slow, "set big 0 0 "+strconv.Itoa(size)+"\r\n"+strings.Repeat("v", size)+"\r\n")
			r := bufio.NewReader(slow)
			if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
				t.Fatalf("set: %q, %v", line, err)
			}
			const gets = 8
			io.WriteString(slow, strings.Repeat("get big\r\n", gets)+"quit\r\n")

			// The slow connection's replies are stuck; another is served.
			served(t, dial(t, addr), "other connection")

			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Repeat(valueReply(size, 'v'), gets); string(got) != want {
				t.Fatalf("slow reader got %d bytes, want %d (then EOF)", len(got), len(want))
			}
		})
	}
}

// TestBytesCounted checks bytes_read and bytes_written against what the
// client sent and received.
func TestBytesCounted(t *testing.T) {
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			_, addr := startDriver(t, loop, 0)
			c := dial(t, addr)
			req := "set a 0 0 5\r\nhello\r\nget a\r\nget b\r\nmn\r\n"
			io.WriteString(c, req)
			r := bufio.NewReader(c)
			received := 0
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				received += len(line)
				if line == "MN\r\n" {
					break
				}
			}
			io.WriteString(c, "stats\r\n")
			v := map[string]string{}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if line == "END\r\n" {
					break
				}
				f := strings.Fields(line)
				v[f[1]] = f[2]
			}
			if want := strconv.Itoa(len(req) + len("stats\r\n")); v["bytes_read"] != want {
				t.Errorf("bytes_read = %s, want %s", v["bytes_read"], want)
			}
			if want := strconv.Itoa(received); v["bytes_written"] != want {
				t.Errorf("bytes_written = %s, want %s", v["bytes_written"], want)
			}
			if v["curr_connections"] != "1" || v["total_connections"] != "1" {
				t.Errorf("curr_connections %s, total_connections %s; want 1, 1", v["curr_connections"], v["total_connections"])
			}
		})
	}
}

// TestShutdownClosesConnections checks that Shutdown ends every
// connection and returns.
func TestShutdownClosesConnections(t *testing.T) {
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			srv, addr := startDriver(t, loop, 0)
			r := served(t, dial(t, addr), "before")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("read after shutdown: %v, want EOF", err)
			}
			if st := srv.Stats(); st.CurrConnections != 0 {
				t.Errorf("curr_connections %d after shutdown", st.CurrConnections)
			}
		})
	}
}

// TestLargeValue stores and reads back a 32 MB value under -I 128m, which
// arrives and leaves over many reads and writes.
func TestLargeValue(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MB")
	}
	t.Parallel()
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			// Thousands of times a socket's buffer, and of a read.
			const size = 32 << 20
			_, addr := startDriver(t, loop, 128<<20)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(time.Minute))
			val := strings.Repeat("0123456789abcdef", size/16)
			go io.WriteString(c, "set big 0 0 "+strconv.Itoa(size)+"\r\n"+val+"\r\nget big\r\n")
			r := bufio.NewReaderSize(c, 1<<20)
			if line, err := r.ReadString('\n'); err != nil || line != "STORED\r\n" {
				t.Fatalf("set: %q, %v", line, err)
			}
			want := "VALUE big 0 " + strconv.Itoa(size) + "\r\n" + val + "\r\nEND\r\n"
			got := make([]byte, len(want))
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Fatal("get returned a different value")
			}
		})
	}
}

// TestKeyTestsUnderEventLoop runs the conformance, fuzz seed, stats and
// connection tests again with every test server on the event loop (see
// eventLoopEnv), so a plain go test covers both drivers.
func TestKeyTestsUnderEventLoop(t *testing.T) {
	if os.Getenv(eventLoopEnv) == "1" {
		t.Skip("already under the event loop")
	}
	if testing.Short() {
		t.Skip("reruns the conformance suite")
	}
	u := &underEventLoop
	if u.result == nil {
		t.Fatal("the child process did not start with the package (TestMain)")
	}
	t.Parallel() // the child started with the package: the others run meanwhile
	err := u.result()
	out := u.out.Bytes()
	if err != nil {
		t.Fatalf("under the event loop: %v\n%s", err, out)
	}
	for _, name := range []string{"TestConformance", "FuzzConn", "TestStatsCountCommands", "TestIdleTimeoutClosesConnection"} {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Errorf("under the event loop, %s did not pass:\n%s", name, out)
		}
	}
}

// TestDropConns checks that DropConns ends every connection and the server
// keeps serving new ones.
func TestDropConns(t *testing.T) {
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			srv, addr := startDriver(t, loop, 0)
			r := served(t, dial(t, addr), "before")
			srv.DropConns()
			if _, err := r.ReadByte(); err != io.EOF {
				t.Fatalf("read after DropConns: %v, want EOF", err)
			}
			served(t, dial(t, addr), "new connection after DropConns")
		})
	}
}
