package peer

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"shoal/server"
	"shoal/store"
)

// target is one kind of server the same test bodies run against.
type target struct {
	name  string
	start func(t testing.TB) string
}

var targets = []target{
	{"shoal", func(t testing.TB) string { return serveShoal(t, listen(t, "127.0.0.1:0")) }},
	{"memcached", startMemcached},
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveShoal runs an in-process shoal (store + server) on ln until the
// test ends and returns its address.
func serveShoal(t testing.TB, ln net.Listener) string {
	t.Helper()
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{}, server.Local{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	storeDone := make(chan error, 1)
	go func() { storeDone <- st.Run(ctx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, server.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
		cancel()
		<-storeDone
	})
	return ln.Addr().String()
}

// startMemcached runs the real memcached on a free loopback port, or skips
// the test when it is not installed.
func startMemcached(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not on PATH")
	}
	for attempt := 0; ; attempt++ {
		ln := listen(t, "127.0.0.1:0")
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cmd := exec.Command(bin, "-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-u", "root", "-c", "100")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		if waitListening(addr, exited) {
			t.Cleanup(func() { cmd.Process.Kill(); <-exited })
			return addr
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatal("memcached did not start")
		}
	}
}

func waitListening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		select {
		case <-exited:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return false
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fakePeer is a TCP listener that reads request lines and hands each to
// answer, which returns the bytes to send back (nil: stay silent). It
// counts the lines it has read, so tests can wait for requests to arrive.
type fakePeer struct {
	ln     net.Listener
	answer func(line string) []byte
	wg     sync.WaitGroup

	mu    sync.Mutex // guards the fields below
	conns []net.Conn
	lines int
	cond  *sync.Cond
}

func startFake(t testing.TB, ln net.Listener, answer func(line string) []byte) *fakePeer {
	f := &fakePeer{ln: ln, answer: answer}
	f.cond = sync.NewCond(&f.mu)
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.kill)
	return f
}

func (f *fakePeer) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, nc)
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(nc)
	}
}

func (f *fakePeer) serve(nc net.Conn) {
	defer f.wg.Done()
	br := bufio.NewReader(nc)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f.mu.Lock()
		f.lines++
		f.cond.Broadcast()
		f.mu.Unlock()
		if out := f.answer(line); out != nil {
			nc.Write(out)
		}
	}
}

// waitLines blocks until n request lines have arrived.
func (f *fakePeer) waitLines(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.lines < n {
		f.cond.Wait()
	}
}

// kill closes the listener and every connection, like a process that dies,
// and waits for the fake's goroutines.
func (f *fakePeer) kill() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
