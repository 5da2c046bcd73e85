package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"shoal/store"
)

// remoteCache is an AsyncCache over a local store that treats keys
// starting with "r" as served elsewhere: their gets complete from another
// goroutine (at once, racing the loop's release, or a little later), and
// commands on them are not Inline.
type remoteCache struct {
	Local
	flushes chan struct{}
}

func (c remoteCache) Inline(key []byte) bool { return !bytes.HasPrefix(key, []byte("r")) }

func (c remoteCache) GetAsync(key []byte, opt *store.GetOptions, dst []byte, done func(store.Item, []byte, store.Result)) (store.Item, []byte, store.Result, bool) {
	if c.Inline(key) {
		it, val, res := c.Get(key, opt, dst)
		return it, val, res, false
	}
	delay := time.Duration(rand.IntN(3)) * 100 * time.Microsecond
	go func() {
		time.Sleep(delay)
		done(c.Get(key, opt, dst))
	}()
	return store.Item{}, nil, store.Miss, true
}

func (c remoteCache) Flush() {
	select {
	case c.flushes <- struct{}{}:
	default:
	}
}

// TestAsyncCacheSameReplies: a pipeline of gets, mg, writes and a
// flush_all over keys served here and elsewhere gets, under an event loop
// over an AsyncCache, the very bytes a goroutine per connection over the
// plain store sends.
func TestAsyncCacheSameReplies(t *testing.T) {
	var req strings.Builder
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		k := fmt.Sprintf("%c%d", "rl"[r.IntN(2)], r.IntN(20))
		switch r.IntN(8) {
		case 0, 1:
			fmt.Fprintf(&req, "get %s\r\n", k)
		case 2:
			fmt.Fprintf(&req, "gets %s l%d\r\n", k, i%20)
		case 3:
			fmt.Fprintf(&req, "mg %s v f t k O%d\r\n", k, i)
		case 4:
			fmt.Fprintf(&req, "set %s %d 0 %d\r\nv%d\r\n", k, i, len(fmt.Sprint(i))+1, i)
		case 5:
			fmt.Fprintf(&req, "incr %s 1\r\ndelete %s\r\n", k, k)
		case 6:
			fmt.Fprintf(&req, "gat 100 %s\r\nmn\r\n", k)
		case 7:
			if i%50 == 7 {
				req.WriteString("flush_all\r\n")
			} else {
				fmt.Fprintf(&req, "mg %s q v\r\n", k)
			}
		}
	}
	req.WriteString("mn\r\n")
	replies := func(cfg Config, async bool) string {
		st, err := store.New(store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var cache Cache = Local{st}
		if async {
			cache = remoteCache{Local{st}, make(chan struct{}, 1)}
		}
		_, addr := serve(t, cfg, cache)
		nc := dial(t, addr)
		go io.WriteString(nc, req.String())
		var out bytes.Buffer
		buf := make([]byte, 64<<10)
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for bytes.Count(out.Bytes(), []byte("MN\r\n")) < strings.Count(req.String(), "mn\r\n") {
			n, err := nc.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				t.Fatalf("after %d bytes: %v", out.Len(), err)
			}
		}
		return out.String()
	}
	want := replies(Config{}, false)
	got := replies(Config{EventLoop: true, Loops: 1}, true)
	if got != want {
		t.Fatalf("event loop over an AsyncCache answered\n%q\nwant\n%q", got, want)
	}
}

// TestAsyncCacheConnGone: connections closed by their client, dropped or
// shut down while a get is away finish without touching a closed socket
// (run with -race), and are forgotten.
func TestAsyncCacheConnGone(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1}, remoteCache{Local{st}, make(chan struct{}, 1)})
	for range 50 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, "get r1\r\nget r2\r\nget l1\r\n")
		nc.Close()
	}
	srv.DropConns()
	waitUntil(t, func() bool { return srv.Stats().CurrConnections == 0 })
	nc := dial(t, addr)
	io.WriteString(nc, "get r1\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return srv.Stats().CurrConnections == 0 })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
