package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/internal/testutil"
)

func TestRefusedIsDown(t *testing.T) {
	c := newClient(t, Config{Addr: testutil.FreeAddr(t), DialTimeout: 5 * time.Second})
	for range 3 { // every call dials once and fails at once, no retry loop
		if _, _, err := c.Get(bg, []byte("k"), GetOptions{}); !errors.Is(err, ErrDown) {
			t.Fatalf("err %v, want ErrDown", err)
		}
	}
	if s := c.Stats(); s.Failures != 3 || s.Timeouts != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestDialErrors: how a failed connect is reported. Refused is ErrDown;
// no route or network unreachable (a partition, and the moments after its
// heal while neighbour entries resolve again) is ErrUnreachable, so that
// its callers count it as no answer and try another owner: reported as a
// plain error, a router took it for the owner's answer and served its own
// stale copy (TestClusterPartitionedNode).
func TestDialErrors(t *testing.T) {
	c := newClient(t, Config{Addr: testutil.FreeAddr(t)})
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{opErr(syscall.ECONNREFUSED), ErrDown},
		{opErr(syscall.EHOSTUNREACH), ErrUnreachable},
		{opErr(syscall.ENETUNREACH), ErrUnreachable},
		{opErr(syscall.ECONNRESET), ErrUnreachable},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, ErrTimeout},
	} {
		got := c.dialError(bg, tc.err)
		if !errors.Is(got, tc.want) {
			t.Errorf("dialError(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if tc.want == ErrUnreachable && !errors.Is(got, tc.err.(*net.OpError).Err.(*os.SyscallError).Err) {
			t.Errorf("dialError(%v) = %v: the errno is lost", tc.err, got)
		}
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if got := c.dialError(ctx, opErr(syscall.EHOSTUNREACH)); !errors.Is(got, context.Canceled) {
		t.Errorf("dialError after the caller's cancel = %v, want context.Canceled", got)
	}
}

// TestSilentPeer: a peer that accepts and reads but never answers (a
// stopped process) costs RequestTimeout, then ErrTimeout for every request
// queued on the connection.
func TestSilentPeer(t *testing.T) {
	f := startFake(t, listen(t, "127.0.0.1:0"), func(string) []byte { return nil })
	c := newClient(t, Config{Addr: f.ln.Addr().String(), Conns: 1, RequestTimeout: 100 * time.Millisecond})
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = c.Get(bg, []byte("k"), GetOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("request %d: %v, want ErrTimeout", i, err)
		}
	}
	if s := c.Stats(); s.Timeouts != 5 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSlowPeerNotFailed: a peer that answers every request in turn, but
// the last ones only after several RequestTimeouts all told, is slow, not
// gone: a request queued behind others waits past RequestTimeout while
// replies keep coming, synchronous or not, and none fails. (A node
// reading 1 MB values for wide multi-gets through a busy peer marked the
// peer down before, and its keys missed; e2e/hostile "wide multi-gets".)
func TestSlowPeerNotFailed(t *testing.T) {
	// 16 requests, 320 ms in all: within maxWaits RequestTimeouts.
	c, h := slowPeer(t, 20*time.Millisecond, 8)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, _, errs[i] = c.Get(bg, []byte("k"), GetOptions{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("get %d: %v", i, err)
		}
	}
	for i := range 8 {
		if o := <-h; o.err != nil {
			t.Errorf("async get %d: %v", i, o.err)
		}
	}
	if d := time.Since(start); d < 2*100*time.Millisecond {
		t.Fatalf("answered within %v: the test wants requests that wait past RequestTimeout", d)
	}
	if s := c.Stats(); s.Timeouts != 0 || s.Failures != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// TestTricklingPeerBounded: a peer that answers each request just within
// RequestTimeout, with many queued, does not hold the last ones for as
// many timeouts: a request waits maxWaits RequestTimeouts at most, then
// fails with ErrTimeout (and the peer can be failed over).
func TestTricklingPeerBounded(t *testing.T) {
	c, _ := slowPeer(t, 80*time.Millisecond, 20) // 1.6 s of replies queued
	start := time.Now()
	_, _, err := c.Get(bg, []byte("k"), GetOptions{})
	if d := time.Since(start); !errors.Is(err, ErrTimeout) || d > 900*time.Millisecond {
		t.Fatalf("a get queued behind 1.6 s of replies: %v after %v, want ErrTimeout within about %v", err, d, maxWaits*100*time.Millisecond)
	}
}

// slowPeer returns a client (one connection, RequestTimeout 100 ms) of a
// fake peer that answers each request, a miss, delay after reading it,
// with queued gets already sent on the connection; h takes their outcomes.
func slowPeer(t *testing.T, delay time.Duration, queued int) (c *Client, h chanHandler) {
	f := startFake(t, listen(t, "127.0.0.1:0"), func(line string) []byte {
		time.Sleep(delay)
		i := strings.Index(line, " O")
		return []byte("EN " + strings.TrimSpace(line[i:]) + "\r\n")
	})
	c = newClient(t, Config{Addr: f.ln.Addr().String(), Conns: 1, RequestTimeout: 100 * time.Millisecond})
	if _, _, err := c.Get(bg, []byte("k"), GetOptions{}); err != nil { // connects: async requests need a connection
		t.Fatal(err)
	}
	h = make(chanHandler, queued)
	for range queued {
		if err := c.GetAsync([]byte("k"), GetOptions{}, h); err != nil {
			t.Fatal(err)
		}
	}
	c.Flush()
	return c, h
}

func TestContextCancel(t *testing.T) {
	f := startFake(t, listen(t, "127.0.0.1:0"), func(string) []byte { return nil })
	c := newClient(t, Config{Addr: f.ln.Addr().String(), RequestTimeout: time.Minute})
	ctx, cancel := context.WithCancel(bg)
	go func() { f.waitLines(1); cancel() }()
	if _, _, err := c.Get(ctx, []byte("k"), GetOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// TestOpaqueMismatch: a reply for some other request breaks the
// connection; the next request redials.
func TestOpaqueMismatch(t *testing.T) {
	var mu sync.Mutex
	bad := true
	f := startFake(t, listen(t, "127.0.0.1:0"), func(line string) []byte {
		mu.Lock()
		defer mu.Unlock()
		if bad {
			bad = false
			return []byte("EN O999\r\n")
		}
		i := strings.Index(line, " O")
		return []byte("EN " + strings.TrimSpace(line[i:]) + "\r\n")
	})
	c := newClient(t, Config{Addr: f.ln.Addr().String(), Conns: 1})
	if _, _, err := c.Get(bg, []byte("k"), GetOptions{}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err %v, want ErrProtocol", err)
	}
	if _, found, err := c.Get(bg, []byte("k"), GetOptions{}); found || err != nil {
		t.Fatalf("after redial: %v %v", found, err)
	}
	if s := c.Stats(); s.Redials != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestKilledPeer: requests in flight when the peer dies fail with
// ErrConnLost; while it is gone, calls fail with ErrDown; once a server
// listens on the address again, the client uses it.
func TestKilledPeer(t *testing.T) {
	f := startFake(t, listen(t, "127.0.0.1:0"), func(string) []byte { return nil })
	addr := f.ln.Addr().String()
	c := newClient(t, Config{Addr: addr, Conns: 2, RequestTimeout: time.Minute})
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := c.Set(bg, fmt.Appendf(nil, "k%d", i), []byte("v"), SetOptions{})
			errs <- err
		}()
	}
	f.waitLines(2 * n) // ms line + data line each
	f.kill()
	for range n {
		if err := <-errs; !errors.Is(err, ErrConnLost) {
			t.Fatalf("in flight: %v, want ErrConnLost", err)
		}
	}
	if _, _, err := c.Get(bg, []byte("k"), GetOptions{}); !errors.Is(err, ErrDown) {
		t.Fatalf("while gone: %v, want ErrDown", err)
	}
	serveShoal(t, listen(t, addr)) // restarted on the same port
	mustSet(t, c, "k", "back", SetOptions{})
	mustGet(t, c, "k", "back")
	if s := c.Stats(); s.Redials < 1 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClose(t *testing.T) {
	f := startFake(t, listen(t, "127.0.0.1:0"), func(string) []byte { return nil })
	c := newClient(t, Config{Addr: f.ln.Addr().String(), RequestTimeout: time.Minute})
	done := make(chan error, 1)
	go func() { _, _, err := c.Get(bg, []byte("k"), GetOptions{}); done <- err }()
	f.waitLines(1)
	c.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("in flight: %v", err)
	}
	c.Close() // idempotent
	if _, _, err := c.Get(bg, []byte("k"), GetOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

// TestNewNoIO: New dials nothing, so a client for a dead address is cheap
// until used.
func TestNewNoIO(t *testing.T) {
	ln := listen(t, "127.0.0.1:0")
	c := newClient(t, Config{Addr: ln.Addr().String()})
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if nc, err := ln.Accept(); err == nil {
		nc.Close()
		t.Fatal("New connected")
	}
	ln.Close()
	_ = c
}

// TestResetInFlight: a request queued on a connection when Reset retires
// it is still answered on that connection (a peer that came back may
// answer it; failing it would count against the peer), the next request
// goes to a fresh connection, and the old one is closed once it is idle.
func TestResetInFlight(t *testing.T) {
	release := make(chan struct{})
	f := startFake(t, listen(t, "127.0.0.1:0"), func(line string) []byte {
		i := strings.Index(line, " O")
		reply := []byte("EN " + strings.TrimSpace(line[i:]) + "\r\n")
		if strings.Contains(line, "slow") {
			<-release
		}
		return reply
	})
	c := newClient(t, Config{Addr: f.ln.Addr().String(), Conns: 1, RequestTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Get(bg, []byte("slow"), GetOptions{})
		done <- err
	}()
	f.waitLines(1)
	c.Reset()
	if _, _, err := c.Get(bg, []byte("fast"), GetOptions{}); err != nil {
		t.Fatalf("request after Reset: %v", err)
	}
	if s := c.Stats(); s.Redials != 1 {
		t.Fatalf("redials %d after Reset, want 1 (stats %+v)", s.Redials, s)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("request in flight at Reset failed: %v", err)
	}
	f.mu.Lock()
	first := f.conns[0]
	f.mu.Unlock()
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the retired connection is still open once idle: read err %v", err)
	}
	if s := c.Stats(); s.Failures != 0 {
		t.Fatalf("failures %d, want 0", s.Failures)
	}
}

// TestGivenUpNeverDelivered: requests the client gave up on are never
// delivered later. Across a network cut their bytes wait in the socket's
// send queue; a plain close leaves them to the kernel, which delivers them
// when the cut heals, and the peer runs a forwarded set seconds after its
// sender failed over (e2e/history). Here the peer reads nothing until the
// client has timed out (its receive window is full); then it reads all it
// can: the request queued behind the window must not be there.
func TestGivenUpNeverDelivered(t *testing.T) {
	// A small receive buffer from the start (set on the listener, so the
	// window is small from the handshake on): the requests behind the
	// first few KB wait in the client's send queue.
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(bg, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.TCPConn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- nc.(*net.TCPConn)
	}()
	c := newClient(t, Config{Addr: ln.Addr().String(), Conns: 1, RequestTimeout: 200 * time.Millisecond})
	big := make([]byte, 64<<10) // more than the peer's window: what follows waits in the send queue
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { _, _, errs[0] = c.Set(bg, []byte("big"), big, SetOptions{}) })
	time.Sleep(50 * time.Millisecond) // queued behind big
	wg.Go(func() { _, _, errs[1] = c.Set(bg, []byte("marker"), []byte("late"), SetOptions{}) })
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrConnLost) {
			t.Fatalf("request %d: %v, want a timeout", i, err)
		}
	}
	var srv *net.TCPConn
	select {
	case srv = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
	defer srv.Close()
	srv.SetReadDeadline(time.Now().Add(2 * time.Second))
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := srv.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	if len(got) == 0 {
		t.Fatal("the peer read nothing: the test did not fill its window")
	}
	if strings.Contains(string(got), "marker") {
		t.Fatalf("the peer got a request the client had given up on (%d bytes read)", len(got))
	}
}
