package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/store"
)

// multiRemote is remoteCache with its own GetMulti (keys starting
// with "r" are served elsewhere), counting its calls and the keys they
// asked for.
type multiRemote struct {
	remoteCache
	calls, keys *atomic.Int64
}

func (m multiRemote) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	m.calls.Add(1)
	m.keys.Add(int64(len(keys)))
	for i, k := range keys {
		if it, val, res := m.Get(k, opt, nil); res == store.Hit {
			into(i, it, val)
		}
	}
}

// TestCoalescedGetsSameReplies: pipelined gets of one key each, some
// served elsewhere, get under an event loop over a Cache that may wait
// the very bytes and counts a goroutine per connection over
// the plain store gives them, with other commands (writes, a multi-key
// get, gat, mg) between them; and they were answered
// together (fewer GetMulti calls than keys).
func TestCoalescedGetsSameReplies(t *testing.T) {
	t.Parallel()
	var req strings.Builder
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		k := fmt.Sprintf("%s%d", []string{"r", "l"}[r.IntN(2)], r.IntN(30))
		switch n := r.IntN(40); {
		case n < 24:
			fmt.Fprintf(&req, "get %s\r\n", k)
		case n < 30:
			fmt.Fprintf(&req, "gets %s\r\n", k)
		case n < 33:
			fmt.Fprintf(&req, "set %s %d 0 %d\r\nv%d\r\n", k, i, len(fmt.Sprint(i))+1, i)
		case n == 33:
			fmt.Fprintf(&req, "delete %s\r\n", k)
		case n == 34:
			fmt.Fprintf(&req, "get %s l%d\r\n", k, i%30)
		case n == 35:
			fmt.Fprintf(&req, "gat 100 %s\r\n", k)
		case n == 36:
			fmt.Fprintf(&req, "mg %s v f k\r\n", k)
		default:
			fmt.Fprintf(&req, "get %s \r\nget  %s\r\n", k, k) // not whole-line gets of one key
		}
	}
	req.WriteString("mn\r\n")
	script := req.String()
	replies := func(cfg Config, cache Cache) (string, Snapshot) {
		srv, addr := serve(t, cfg, cache)
		nc := dial(t, addr)
		go io.WriteString(nc, script)
		var out bytes.Buffer
		buf := make([]byte, 64<<10)
		nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		for bytes.Count(out.Bytes(), []byte("MN\r\n")) < strings.Count(script, "mn\r\n") {
			n, err := nc.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				t.Fatalf("after %d bytes: %v", out.Len(), err)
			}
		}
		return out.String(), srv.Stats()
	}
	newStore := func() *store.Store {
		st, err := store.New(store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	want, wantStats := replies(Config{}, Local{newStore()})
	mr := multiRemote{newRemoteCache(newStore()), new(atomic.Int64), new(atomic.Int64)}
	got, gotStats := replies(Config{EventLoop: true, Loops: 1}, mr)
	if got != want {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("coalesced gets answered differently from byte %d:\n%q\nwant\n%q", i, got[max(0, i-200):min(len(got), i+200)], want[max(0, i-200):min(len(want), i+200)])
	}
	for _, name := range []string{"cmd_get", "get_hits", "get_misses", "cmd_touch", "cmd_set"} {
		if g, w := gotStats.Commands[name], wantStats.Commands[name]; g != w || w == 0 {
			t.Errorf("%s = %d, want %d (not 0)", name, g, w)
		}
	}
	calls, keys := mr.calls.Load(), mr.keys.Load()
	t.Logf("GetMulti: %d calls for %d keys", calls, keys)
	if calls == 0 || keys < 2*calls {
		t.Errorf("GetMulti: %d calls for %d keys: the pipelined gets were not answered together", calls, keys)
	}
}

// waitingRemote is a Cache whose GetMulti keys starting with "r" wait for
// the caller's context to end and then miss, as a router's forwarded gets
// do when a connection is dropped; entered is signalled on each call.
type waitingRemote struct {
	remoteCache
	entered chan struct{}
}

func (w waitingRemote) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	w.entered <- struct{}{}
	remote := false
	for _, k := range keys {
		remote = remote || bytes.HasPrefix(k, []byte("r"))
	}
	if remote {
		<-ctx.Done()
	}
	for i, k := range keys {
		if bytes.HasPrefix(k, []byte("r")) {
			continue // gave up: a miss
		}
		if it, val, res := w.Get(k, opt, nil); res == store.Hit {
			into(i, it, val)
		}
	}
}

// TestCoalescedGetsDropped: gets answered together on a connection that
// is dropped meanwhile answer nothing (the misses before a hit may be the
// cache giving up), as the gets one by one would not, even when a hit
// after them is large enough to be written at once.
func TestCoalescedGetsDropped(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("v"), 70<<10)
	for _, k := range []string{"r1", "l1"} {
		if res, _ := st.Set([]byte(k), big, &store.SetOptions{}); res != store.Stored {
			t.Fatalf("set %s: %v", k, res)
		}
	}
	wr := waitingRemote{newRemoteCache(st), make(chan struct{}, 8)}
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1}, wr)
	nc := dial(t, addr)
	io.WriteString(nc, "get r1\r\nget l1\r\nget l1\r\n")
	select {
	case <-wr.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the gets were not answered together (no GetMulti call)")
	}
	srv.DropConns()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("after %d bytes: %v", len(out), err)
	}
	if len(out) != 0 {
		t.Fatalf("a dropped connection's gets answered %d bytes, beginning %q; want none", len(out), out[:min(len(out), 40)])
	}
}
