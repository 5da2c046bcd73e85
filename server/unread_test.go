package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/internal/testca"
	"shoal/internal/testutil"
	"shoal/store"
)

// smallRcvDial dials addr with a small receive buffer, so that little of
// a reply fits in the client's socket.
func smallRcvDial(t *testing.T, addr string) net.Conn {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// limitedServer is an event-loop server, not yet serving, over a fresh
// store (items up to 1 MiB), with loops loops, maxItem as -I and limit as
// the connection memory limit; wrap makes its cache from the store (nil:
// a Local).
func limitedServer(t *testing.T, loops, maxItem int, limit int64, wrap func(*store.Store) Cache) (*Server, *store.Store) {
	t.Helper()
	st, err := store.New(store.Config{MaxItemSize: 1 << 20, MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var cache Cache = Local{st}
	if wrap != nil {
		cache = wrap(st)
	}
	srv, err := New(Config{EventLoop: loops > 0, Loops: loops, MaxItemSize: maxItem, ConnMemLimit: limit, Items: st}, cache)
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// heapNow is the live heap after a collection.
func heapNow() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestUnreadParkedGets: over a Cache that may wait (a cluster node), a
// single-key get parks, and its completion appends the value on another
// goroutine. The replies a connection brings back to its loop are counted
// (resume), so connections that never read them are closed as on a
// Local: 40 of them held 38 MB, not counted, none closed (77 MB before
// the bound existed). Once the spell is over the loop, which waited with
// a deadline meanwhile, still serves: a deadline left behind once made it
// spin without looking at its events, and Shutdown hang.
func TestUnreadParkedGets(t *testing.T) {
	const size, hogs, limit = 1_000_000, 40, 2 << 20
	srv, st := limitedServer(t, 1, 1<<20, limit, func(st *store.Store) Cache { return newRemoteCache(st) })
	addr := serveOn(t, srv, sndListener(t, 16<<10))
	if res, _ := st.Set([]byte("rbig"), []byte(strings.Repeat("v", size)), &store.SetOptions{}); res != store.Stored {
		t.Fatal(res)
	}
	hogsBounded(t, srv, addr, "get rbig\r\n", hogs, 4*limit, "parked gets") // one get: not coalesced; parks (key "r...")
}

// hogsBounded sends request on hogs connections that read nothing and
// checks, 1 s on, that the heap grew by at most most bytes, that some
// of them were closed, and that the server serves once the spell is over.
func hogsBounded(t *testing.T, srv *Server, addr, request string, hogs int, most int64, what string) {
	t.Helper()
	base := heapNow()
	for range hogs {
		io.WriteString(smallRcvDial(t, addr), request)
	}
	time.Sleep(time.Second) // the sweep closes them after stallLimit of the spell
	grew := heapNow() - base
	cm := srv.Stats().ConnMem
	t.Logf("heap grew %d MB; ResponseBytes %d, Evicted %d, limit %d", grew>>20, cm.ResponseBytes, cm.Evicted, srv.mem.limit)
	if grew > most || cm.Evicted == 0 {
		t.Errorf("unread replies of %s hold %d MB; connMem counts %d bytes of replies and closed %d connections",
			what, grew>>20, cm.ResponseBytes, cm.Evicted)
	}
	if lines, err := testutil.TextLines(addr, "set after 0 0 1\r\nx\r\nget after\r\n", 4); err != nil || lines[1] != "VALUE after 0 1" {
		t.Errorf("after the spell: %q %v", lines, err)
	}
}

// sndListener listens on loopback with a send buffer of size, which
// accepted sockets inherit.
func sndListener(t *testing.T, size int) net.Listener {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, size) })
		return nil
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestUnreadSweptOnEveryLoop: a connection holding unread replies on a
// loop that sleeps (nothing else happens on it) is still swept when the
// replies pass the limit because of another loop's connections, even
// after a passing of the limit that was gone before any loop looked
// (a multi-get whose replies were all written at once). A one-shot flag
// that one loop cleared for all once left that loop asleep: a waiting
// client then waited for a slow reader elsewhere (1.4 s here) and the
// unread connection was never closed.
func TestUnreadSweptOnEveryLoop(t *testing.T) {
	const limit = 96 << 10
	srv, st := limitedServer(t, 2, 32<<10, limit, nil)
	small := serveOn(t, srv, sndListener(t, 16<<10))
	lnBig := sndListener(t, 4<<20)
	go srv.Serve(lnBig)
	big := lnBig.Addr().String()
	for i := range 4 {
		st.Set(fmt.Appendf(nil, "f%d", i), []byte(strings.Repeat("f", 60<<10)), &store.SetOptions{})
	}
	st.Set([]byte("h"), []byte(strings.Repeat("h", 60<<10)), &store.SetOptions{})
	st.Set([]byte("s"), []byte(strings.Repeat("s", 60<<10)), &store.SetOptions{})
	// W's value does not fit a base reply buffer: a small one would not
	// wait (fitsBase).
	st.Set([]byte("w"), []byte(strings.Repeat("w", 2*outBase)), &store.SetOptions{})

	// Accept order decides the loop: #0 F loop0, #1 H loop1, #2 W loop0, #3 D loop1, #4 S loop0.
	f := dial(t, big)
	fr := served(t, f, "F")
	h := smallRcvDial(t, small)
	served(t, h, "H")
	w := dial(t, small)
	wr := served(t, w, "W")
	d := dial(t, small)
	served(t, d, "D")
	s := smallRcvDial(t, small)
	sr := served(t, s, "S")

	{
		// A fast client's multi-get of small values: its reply buffer
		// grows past the limit, all of it written, and is dropped before
		// any loop looks.
		io.WriteString(f, "get f0 f1 f2 f3\r\n")
		if _, err := io.CopyN(io.Discard, fr, int64(4*(60<<10+len("VALUE f0 0 61440\r\n\r\n"))+5)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		t.Logf("after the transient: outOver %v", srv.mem.outOver())
	}
	excess := func() int64 { cm := srv.Stats().ConnMem; return cm.ResponseBytes - outBase*cm.ResponseCount }
	// H (loop1) asks for a value and never reads: under the limit alone.
	io.WriteString(h, "get h\r\n")
	time.Sleep(200 * time.Millisecond)
	hx := excess()
	// S (loop0) asks for one and reads it slowly: with H, past the limit.
	io.WriteString(s, "get s\r\n")
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := sr.Read(buf); err != nil {
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	t.Logf("H holds %d, H+S %d, limit %d, outOver %v", hx, excess(), limit, srv.mem.outOver())
	if hx >= limit || !srv.mem.outOver() {
		t.Skip("calibration: H must hold less than the limit, H+S more")
	}
	// W (loop0) asks for a value: it waits until the replies hold less.
	start := time.Now()
	io.WriteString(w, "get w\r\n")
	w.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := wr.ReadString('\n')
	took := time.Since(start)
	t.Logf("W: %q %v after %v; evicted %d", line, err, took, srv.Stats().ConnMem.Evicted)
	if ev := srv.Stats().ConnMem.Evicted; ev == 0 || took > time.Second {
		t.Errorf("W waited %v and %d connections were closed: H (unread through the spell, on the other loop) was never swept", took, ev)
	}
}

// TestUnreadRepliesBounded: under the event loop and on the goroutine
// driver, connections that ask for large values and read nothing hold at
// most about the connections' memory limit between them (each used to
// hold its first value whatever the others held: 100 connections held 83
// MB; on the goroutine driver its blocked writes were not even counted),
// those whose replies wait unread through a spell past the limit are
// closed, and a client that was served before gets its values meanwhile.
func TestUnreadRepliesBounded(t *testing.T) {
	t.Parallel()
	t.Run("event loop", func(t *testing.T) { t.Parallel(); unreadRepliesBounded(t, 1) })
	t.Run("goroutines", func(t *testing.T) { t.Parallel(); unreadRepliesBounded(t, 0) })
}

// unreadRepliesBounded is TestUnreadRepliesBounded with loops event loops
// (0: the goroutine driver).
func unreadRepliesBounded(t *testing.T, loops int) {
	const size, hogs, limit = 1_000_000, 100, 2 << 20
	srv, st := limitedServer(t, loops, 1<<20, limit, nil)
	// Small send buffers, so that the kernel takes little of each value,
	// whatever its memory.
	addr := serveOn(t, srv, sndListener(t, 16<<10))
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
	for range hogs {
		io.WriteString(smallRcvDial(t, addr), strings.Repeat("get big0\r\nget big1\r\nget big2\r\nget big3\r\n", 2))
	}
	var peak int64
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		peak = max(peak, srv.Stats().ConnMem.ResponseBytes)
		time.Sleep(5 * time.Millisecond)
	}
	// The limit, a value started just before it was passed, and one base
	// buffer per connection.
	if peak <= limit {
		t.Errorf("the replies held %d bytes at the peak, never past the limit %d: the test saw no attack", peak, limit)
	}
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
	// Nor does a new connection's get of a small value: its reply fits
	// the buffer every connection is lent anyway (fitsBase). It waited
	// its turn behind the hogs before.
	start = time.Now()
	if lines, err := testutil.TextLines(addr, "get fresh\r\n", 3); err != nil || lines[0] != "VALUE fresh 0 1" || lines[2] != "END" {
		t.Errorf("a small get during the attack: %q %v", lines, err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a small get during the attack took %v", took)
	}
	if n := srv.Stats().ConnMem.Evicted; n == 0 {
		t.Errorf("no connection closed for replies left unread")
	}
	t.Logf("peak replies held %d bytes (limit %d); %d connections closed", peak, limit, srv.Stats().ConnMem.Evicted)
}

// TestUnreadRepliesBoundedTLS: TLS connections, which the goroutine
// driver serves (an event loop cannot read them), are bounded as the
// others: hogs that ask for large values and read nothing hold about the
// limit between them, and their stalled writes are ended (a TLS write
// that timed out cannot go on, so the connection closes).
func TestUnreadRepliesBoundedTLS(t *testing.T) {
	t.Parallel()
	const size, hogs, limit = 1_000_000, 40, 2 << 20
	srv, st := limitedServer(t, 1, 1<<20, limit, nil)
	ca := testca.New(t, "unread-ca")
	certPEM, keyPEM := ca.IssuePEM(t, "server")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv, tls.NewListener(sndListener(t, 16<<10), &tls.Config{Certificates: []tls.Certificate{cert}}))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	client := func(c net.Conn) *tls.Conn {
		tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		return tc
	}
	val := strings.Repeat("v", size)
	for i := range 2 {
		st.Set(fmt.Appendf(nil, "big%d", i), []byte(val), &store.SetOptions{})
	}
	old := client(dial(t, addr))
	oldR := bufio.NewReaderSize(old, 1<<20)
	get := func(key string) {
		fmt.Fprintf(old, "get %s\r\n", key)
		if line, err := oldR.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VALUE "+key) {
			t.Fatalf("get %s: %q %v", key, line, err)
		}
		if _, err := oldR.Discard(size + 2 + len("END\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	get("big0")
	for range hogs {
		io.WriteString(client(smallRcvDial(t, addr)), "get big0\r\nget big1\r\n")
	}
	var peak int64
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		peak = max(peak, srv.Stats().ConnMem.ResponseBytes)
	}
	if bound := int64(limit + 2*size + (hogs+2)*outBase); peak <= limit || peak > bound {
		t.Errorf("replies held %d bytes at the peak, want past the limit %d (an attack) and at most %d", peak, limit, bound)
	}
	old.SetDeadline(time.Now().Add(5 * time.Second))
	get("big1") // a client served before still gets its values
	if n := srv.Stats().ConnMem.Evicted; n == 0 {
		t.Errorf("no TLS connection closed for replies left unread")
	}
	t.Logf("peak replies held %d bytes (limit %d); %d connections closed", peak, limit, srv.Stats().ConnMem.Evicted)
}

// TestGoroutineReplyBuffersGoBack: on the goroutine driver, a reply
// buffer grown for a large reply goes once the reply is written. Kept,
// its capacity counted as replies waiting: four idle connections that had
// read a 900 KB value each held the node past its limit for good, and
// every large retrieval after them waited forever.
func TestGoroutineReplyBuffersGoBack(t *testing.T) {
	t.Parallel()
	const size, limit = 900_000, 2 << 20
	srv, st := limitedServer(t, 0, 1<<20, limit, nil)
	addr := serveOn(t, srv, sndListener(t, 1<<20))
	st.Set([]byte("big"), []byte(strings.Repeat("v", size)), &store.SetOptions{})
	for _, req := range []string{"mg big v\r\n", "get big\r\n", "mg big v\r\n", "get big\r\n"} {
		c := dial(t, addr)
		io.WriteString(c, req)
		if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 2*time.Second, "the idle connections' buffers back to their base", func() bool {
		cm := srv.Stats().ConnMem
		return cm.ResponseBytes <= outBase*cm.ResponseCount
	})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, "get big\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "VALUE big") {
		t.Errorf("a get after them: %q %v", line, err)
	}
}

// TestGoroutineSlowReaderKept: on the goroutine driver, through a spell
// past the limit, a client that reads its large value slowly (about 200
// KB/s, slower than a chunk per stallLimit) keeps its connection while
// one that reads nothing is closed.
func TestGoroutineSlowReaderKept(t *testing.T) {
	t.Parallel()
	const size, limit = 400_000, 256 << 10
	srv, st := limitedServer(t, 0, limit/2, limit, nil) // the limit is at least twice -I
	addr := serveOn(t, srv, sndListener(t, 16<<10))
	st.Set([]byte("big"), []byte(strings.Repeat("v", size)), &store.SetOptions{})
	io.WriteString(smallRcvDial(t, addr), "get big\r\n") // the hog: past the limit
	testutil.WaitFor(t, 2*time.Second, "the hog past the limit", srv.mem.outOver)
	slow := smallRcvDial(t, addr)
	slow.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(slow, "get big\r\n")
	got, buf := 0, make([]byte, 4096)
	for got < size {
		n, err := slow.Read(buf)
		if err != nil {
			t.Fatalf("the slow reader's connection ended after %d bytes: %v", got, err)
		}
		got += n
		time.Sleep(20 * time.Millisecond) // ~200 KB/s
	}
	if n := srv.Stats().ConnMem.Evicted; n == 0 {
		t.Errorf("the hog was not closed")
	}
}

// TestKickJudgesTheClient: the reply watcher ends a chunk's write on the
// goroutine driver when its socket's send queue holds bytes its client
// leaves there, not when the queue is empty: then the writer is the one
// late (held off the CPU), and its client, which read everything, was
// closed so on a busy CI machine.
func TestKickJudgesTheClient(t *testing.T) {
	ln := sndListener(t, 16<<10)
	defer ln.Close()
	client := smallRcvDial(t, ln.Addr().String())
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := &conn{nc: nc}
	now := time.Now()
	long := now.Add(-time.Hour).UnixNano()

	c.blocked.since, c.blocked.queued = long, -1 // late to write, nothing queued
	c.blocked.kick(c, now, now.Add(-stallLimit))
	if c.blocked.kicked {
		t.Fatal("kicked with an empty send queue: the client took everything")
	}

	go nc.Write(make([]byte, 1<<20)) // the client reads none of it
	testutil.WaitFor(t, 2*time.Second, "a full send queue", func() bool {
		q := sendQueueOf(nc)
		time.Sleep(50 * time.Millisecond)
		return q > 0 && q == sendQueueOf(nc)
	})
	c.blocked.since, c.blocked.queued = long, -1 // a chunk begun an hour ago
	c.blocked.kick(c, now, now.Add(-stallLimit))
	if !c.blocked.kicked {
		t.Fatal("not kicked with its client leaving the send queue full for an hour")
	}
	c.blocked.since, c.blocked.kicked = long, false
	full := sendQueueOf(nc)
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	testutil.WaitFor(t, 2*time.Second, "the client taking some", func() bool {
		client.Read(make([]byte, 4096)) // slowly
		return sendQueueOf(nc) != full
	})
	c.blocked.kick(c, now, now.Add(-stallLimit))
	if c.blocked.kicked {
		t.Error("kicked although its client took some of the send queue")
	}
}
