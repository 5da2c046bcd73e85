package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/gossip"
	"shoal/internal/testutil"
	"shoal/membership"
	"shoal/peer"
	"shoal/ring"
	"shoal/server"
	"shoal/store"
)

// asyncRig is a router ("self") whose client port is served by an event
// loop, with one other member "p" at peerAddr: forwarded gets go out
// asynchronously (the router as the server's Cache under event loops).
type asyncRig struct {
	rt   *Router
	srv  *server.Server
	st   *store.Store
	view *membership.View
	addr string
}

func startAsyncRig(t *testing.T, peerAddr string, replicas int) *asyncRig {
	t.Helper()
	return startRig(t, peerAddr, replicas, server.Config{EventLoop: true, Loops: 1})
}

// startRig is startAsyncRig with the client port's server.Config (a
// goroutine per connection without EventLoop); opts change the router's
// configuration.
func startRig(t *testing.T, peerAddr string, replicas int, cfg server.Config, opts ...func(*RouterConfig)) *asyncRig {
	t.Helper()
	r, err := ring.New(ring.Config{Shards: 16, Replicas: replicas}, []string{"p", "self"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	view := &membership.View{Epoch: 1, Members: []etcdsync.Member{{Name: "p", PeerAddr: peerAddr}, {Name: "self"}}, Ring: r}
	st := newStore(t)
	fm := &fakeMembers{view: view, health: map[string]gossip.State{"p": gossip.Alive}}
	rcfg := RouterConfig{Members: fm, Store: st, Peer: peer.Config{Conns: 1, RequestTimeout: 300 * time.Millisecond}, DownFor: time.Minute}
	for _, o := range opts {
		o(&rcfg)
	}
	rt, err := NewRouter(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	rt.apply() // as Run would, which the rig does not run
	cfg.Items = st
	srv, addr := serveCache(t, cfg, rt)
	t.Cleanup(func() { rt.Close() }) // after the server's cleanup
	return &asyncRig{rt: rt, srv: srv, st: st, view: view, addr: addr}
}

func newStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// serveCache serves cache on a loopback port until the test ends.
func serveCache(t testing.TB, cfg server.Config, cache server.Cache) (*server.Server, string) {
	t.Helper()
	srv, err := server.New(cfg, cache)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// ownedBy returns n keys whose primary is owner.
func ownedBy(v *membership.View, owner, prefix string, n int) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s%d", prefix, i)
		if v.Ring.Primary(v.Ring.Shard([]byte(k))) == owner {
			keys = append(keys, k)
		}
	}
	return keys
}

// proxy relays connections to target until frozen: from then on it
// drops what either side sends, so the target seems to stop answering.
type proxy struct {
	addr   string
	frozen atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	relay := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if err != nil {
				dst.Close()
				return
			}
			if !p.frozen.Load() {
				dst.Write(buf[:n])
			}
		}
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				nc.Close()
				continue
			}
			t.Cleanup(func() { nc.Close(); up.Close() })
			go relay(up, nc)
			go relay(nc, up)
		}
	}()
	return p
}

// startPeer serves a store as a peer port behind a proxy.
func startPeer(t *testing.T) (*store.Store, *proxy) {
	t.Helper()
	pst := newStore(t)
	_, paddr := serveCache(t, server.Config{PeerExtensions: true}, server.Local{Store: pst})
	return pst, startProxy(t, paddr)
}

// warmPeer makes the router's connection to the peer live (Start does
// not dial: the first forwarded get takes the synchronous path, which does).
func warmPeer(t *testing.T, rig *asyncRig) {
	t.Helper()
	k := ownedBy(rig.view, "p", "warm", 1)[0]
	nc, br := connect(t, rig.addr)
	fmt.Fprintf(nc, "get %s\r\n", k)
	if got := readN(t, br, 5); got != "END\r\n" {
		t.Fatalf("warm-up get: %q", got)
	}
	nc.Close()
}

// connect dials addr; the connection is closed when the test ends.
func connect(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

// readN reads n bytes.
func readN(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

// TestAsyncPipelinedMixed: one connection pipelines gets, gets and mg of
// keys served here and by a peer (forwarded asynchronously), writes to
// both (a forwarded one goes out asynchronously too) and a version
// command; every reply comes back in request order, byte for byte.
func TestAsyncPipelinedMixed(t *testing.T) {
	pst, px := startPeer(t)
	rig := startAsyncRig(t, px.addr, 1)
	remote, local := ownedBy(rig.view, "p", "r", 6), ownedBy(rig.view, "self", "l", 6)
	for _, k := range remote {
		pst.Set([]byte(k), []byte("p-"+k), &store.SetOptions{Flags: 7})
	}
	for _, k := range local {
		rig.st.Set([]byte(k), []byte("s-"+k), &store.SetOptions{Flags: 3})
	}
	var req, want strings.Builder
	value := func(k, v string, flags int) {
		fmt.Fprintf(&want, "VALUE %s %d %d\r\n%s\r\nEND\r\n", k, flags, len(v), v)
	}
	for i := range remote {
		r, l := remote[i], local[i]
		switch i % 3 {
		case 0:
			fmt.Fprintf(&req, "get %s\r\nget %s\r\n", r, l)
			value(r, "p-"+r, 7)
			value(l, "s-"+l, 3)
		case 1:
			fmt.Fprintf(&req, "mg %s v f\r\nmg %s v f\r\nmg missing-%d v\r\n", l, r, i)
			fmt.Fprintf(&want, "VA %d f3\r\ns-%s\r\nVA %d f7\r\np-%s\r\nEN\r\n", len(l)+2, l, len(r)+2, r)
		case 2:
			fmt.Fprintf(&req, "set %s 1 0 2\r\nxx\r\nget %s\r\nset %s 2 0 2\r\nyy\r\nget %s %s\r\n", r, r, l, l, r)
			want.WriteString("STORED\r\n")
			value(r, "xx", 1)
			want.WriteString("STORED\r\n")
			fmt.Fprintf(&want, "VALUE %s 2 2\r\nyy\r\nVALUE %s 1 2\r\nxx\r\nEND\r\n", l, r)
		}
	}
	req.WriteString("version\r\n")
	want.WriteString("VERSION " + server.Version + "\r\n")
	nc, br := connect(t, rig.addr)
	if _, err := io.WriteString(nc, req.String()); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, br, want.Len()); got != want.String() {
		t.Fatalf("replies:\n%q\nwant:\n%q", got, want.String())
	}
	if ps := rig.rt.PeerStats(); len(ps) != 1 || ps[0].Forwarded == 0 || ps[0].Failures != 0 {
		t.Fatalf("peer stats %+v: want forwarded requests, no failures", ps)
	}
}

// TestAsyncManyConns: many connections, each a forwarded get at a time,
// all answered (the gets of a loop wake-up share the peer's writes).
func TestAsyncManyConns(t *testing.T) {
	pst, px := startPeer(t)
	rig := startAsyncRig(t, px.addr, 1)
	keys := ownedBy(rig.view, "p", "k", 20)
	for _, k := range keys {
		pst.Set([]byte(k), []byte("v-"+k), &store.SetOptions{})
	}
	errs := make(chan error, 32)
	for c := range 32 {
		go func() {
			nc, err := net.Dial("tcp", rig.addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(nc)
			for i := range 200 {
				k := keys[(c+i)%len(keys)]
				fmt.Fprintf(nc, "get %s\r\n", k)
				want := fmt.Sprintf("VALUE %s 0 %d\r\nv-%s\r\nEND\r\n", k, len(k)+2, k)
				got := make([]byte, len(want))
				if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
					errs <- fmt.Errorf("get %s: %q, %v", k, got, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestAsyncPeerTimeout: the owner stops answering while forwarded gets
// wait on it; once the peer timeout passes they fail over to the next
// owner (this node), and the owner is marked down.
func TestAsyncPeerTimeout(t *testing.T) {
	t.Parallel()
	_, px := startPeer(t)
	rig := startAsyncRig(t, px.addr, 2)
	warmPeer(t, rig)
	keys := ownedBy(rig.view, "p", "k", 4)
	for _, k := range keys {
		rig.st.Set([]byte(k), []byte("here"), &store.SetOptions{})
	}
	px.frozen.Store(true)
	var conns []*bufio.Reader
	for _, k := range keys {
		nc, br := connect(t, rig.addr)
		fmt.Fprintf(nc, "get %s\r\n", k)
		conns = append(conns, br)
	}
	start := time.Now()
	for i, br := range conns {
		want := fmt.Sprintf("VALUE %s 0 4\r\nhere\r\nEND\r\n", keys[i])
		if got := readN(t, br, len(want)); got != want {
			t.Fatalf("get %s: %q, want %q", keys[i], got, want)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("failover took %v", d)
	}
	if ps := rig.rt.PeerStats(); len(ps) != 1 || ps[0].Failures == 0 || !ps[0].Down {
		t.Fatalf("peer stats %+v: want failures and the peer down", ps)
	}
	for _, m := range rig.rt.peers.Load().byName {
		if st := m.client.Stats(); st.Timeouts == 0 || st.InFlight != 0 {
			t.Fatalf("peer client stats %+v: want timeouts, none in flight", st)
		}
	}
}

// TestAsyncClientGone: a client closes its connection, or the server drops
// it (DropConns) or shuts down, while its forwarded get (set) waits on a
// silent owner: the connection is closed once the get completes, nothing is
// written to a closed socket, and new connections are served meanwhile.
func TestAsyncClientGone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ how, op string }{
		{"client closes", "get"}, {"DropConns", "get"}, {"Shutdown", "get"},
		{"client closes", "set"}, {"DropConns", "set"}, {"Shutdown", "set"},
	} {
		how := tc.how
		t.Run(how+" "+tc.op, func(t *testing.T) {
			_, px := startPeer(t)
			rig := startAsyncRig(t, px.addr, 1)
			warmPeer(t, rig)
			k := ownedBy(rig.view, "p", "k", 1)[0]
			local := ownedBy(rig.view, "self", "l", 1)[0]
			px.frozen.Store(true)
			nc2, br2 := connect(t, rig.addr)
			if tc.op == "set" {
				fmt.Fprintf(nc2, "set %s 0 0 1\r\nv\r\nget %s\r\n", k, local)
			} else {
				fmt.Fprintf(nc2, "get %s\r\nget %s\r\n", k, local)
			}
			time.Sleep(50 * time.Millisecond) // the get (set) is pending
			switch how {
			case "client closes":
				nc2.Close()
			case "DropConns":
				rig.srv.DropConns()
			case "Shutdown":
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := rig.srv.Shutdown(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if how != "client closes" {
				// The pending get's connection closes, unanswered: the
				// get after it never runs.
				if b, err := io.ReadAll(br2); err != nil || len(b) != 0 {
					t.Fatalf("dropped connection: read %q, %v", b, err)
				}
			}
			if how == "Shutdown" {
				return
			}
			nc3, br3 := connect(t, rig.addr)
			fmt.Fprintf(nc3, "set %s 0 0 1\r\nx\r\nget %s\r\n", local, local)
			if got := readN(t, br3, 8+len("VALUE "+local+" 0 1\r\nx\r\nEND\r\n")); got != "STORED\r\nVALUE "+local+" 0 1\r\nx\r\nEND\r\n" {
				t.Fatalf("a new connection: %q", got)
			}
			// Only nc3 is left once the pending get has timed out.
			testutil.WaitFor(t, 5*time.Second, "only the new connection left", func() bool { return rig.srv.Stats().CurrConnections == 1 })
		})
	}
}

// TestShutdownCancelsForwarded: a request forwarded on the synchronous
// path (an incr; a get under a goroutine per connection) to a silent
// owner ends when the server shuts down, with its connection's context,
// instead of waiting out the peer timeout; and the owner, which did
// nothing wrong, is not counted as failed nor marked down.
func TestShutdownCancelsForwarded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  server.Config
		req  func(k string) string
	}{
		{"event loop incr", server.Config{EventLoop: true, Loops: 1}, func(k string) string { return "incr " + k + " 1\r\n" }},
		{"goroutine get", server.Config{}, func(k string) string { return "get " + k + "\r\n" }},
		{"goroutine set", server.Config{}, func(k string) string { return "set " + k + " 0 0 1\r\nv\r\n" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, px := startPeer(t)
			const timeout = 20 * time.Second
			rig := startRig(t, px.addr, 1, tc.cfg, func(c *RouterConfig) { c.Peer.RequestTimeout = timeout })
			warmPeer(t, rig)
			k := ownedBy(rig.view, "p", "k", 1)[0]
			px.frozen.Store(true)
			nc, _ := connect(t, rig.addr)
			fmt.Fprint(nc, tc.req(k))
			testutil.WaitFor(t, 5*time.Second, "the request in flight to the owner", func() bool {
				for _, m := range rig.rt.peers.Load().byName {
					if m.client.Stats().InFlight > 0 {
						return true
					}
				}
				return false
			})
			ctx, cancel := context.WithTimeout(context.Background(), timeout/2)
			defer cancel()
			start := time.Now()
			if err := rig.srv.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v after %v (the forwarded request waited out the peer timeout)", err, time.Since(start))
			}
			if ps := rig.rt.PeerStats(); len(ps) != 1 || ps[0].Failures != 0 || ps[0].Down {
				t.Fatalf("peer stats %+v: the owner counted as failed for a request its client gave up", ps)
			}
		})
	}
}

// TestFailedBlamesOnlyWithLiveContext: an error that wraps
// context.DeadlineExceeded (a TLS handshake that timed out, a dial's
// timeout) is the member's failure while the request's context lives,
// and fails over; once the request's connection has ended, no error is
// the member's.
func TestFailedBlamesOnlyWithLiveContext(t *testing.T) {
	rig := startRig(t, testutil.FreeAddr(t), 1, server.Config{})
	m := rig.rt.peers.Load().get("p")
	timedOut := fmt.Errorf("%w: handshake with p: %w", peer.ErrTimeout, context.DeadlineExceeded)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if m.Failed(ended, timedOut) || m.failures.Load() != 0 || m.down() {
		t.Fatalf("a request whose connection ended blamed the member: failures %d, down %v", m.failures.Load(), m.down())
	}
	if !m.Failed(context.Background(), timedOut) || m.failures.Load() != 1 || !m.down() {
		t.Fatalf("a handshake timeout did not fail over: failures %d, down %v", m.failures.Load(), m.down())
	}
}

// TestStartRoom: a get started with a Room smaller than its value is
// answered by the value's size (Request.Wants), whether the key is
// served here (the store is looked at, the value not read) or by a peer
// (mg A: the owner sends the size alone), and the peer is not blamed; a
// room the value fits brings the value, and so does a room as large as
// any value, which goes unsaid (no A).
func TestStartRoom(t *testing.T) {
	pst, px := startPeer(t)
	rig := startAsyncRig(t, px.addr, 1)
	warmPeer(t, rig)
	val := strings.Repeat("v", 100_000)
	here, there := ownedBy(rig.view, "self", "here", 1)[0], ownedBy(rig.view, "p", "there", 1)[0]
	rig.st.Set([]byte(here), []byte(val), &store.SetOptions{})
	pst.Set([]byte(there), []byte(val), &store.SetOptions{})
	for _, key := range []string{here, there} {
		for _, tc := range []struct {
			room, wants int
			res         store.Result
		}{
			{4096, len(val), store.Miss},
			{len(val), 0, store.Hit},
			{1 << 20, 0, store.Hit},
		} {
			done := make(chan *server.Request, 1)
			req := &server.Request{Op: server.OpGet, Key: []byte(key), Room: tc.room}
			if !rig.rt.Start(context.Background(), req, func(r *server.Request) { done <- r }) {
				done <- req
			}
			rig.rt.Flush() // as the loop does at the end of its wake-up
			got := <-done
			if got.Wants != tc.wants || got.Res != tc.res || got.Res == store.Hit && string(got.Val) != val {
				t.Errorf("get %s room %d: wants %d, %v, %d bytes; want wants %d, %v", key, tc.room, got.Wants, got.Res, len(got.Val), tc.wants, tc.res)
			}
		}
	}
	for _, p := range rig.rt.PeerStats() {
		if p.Failures != 0 {
			t.Errorf("%s: %d failures counted: a size for a room is an answer", p.Peer, p.Failures)
		}
	}
}
