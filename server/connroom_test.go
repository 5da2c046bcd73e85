package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/store"
)

// roomCache is remoteCache whose gets of keys served elsewhere honour
// Request.Room as a forwarding Cache does: a larger value is answered by
// its size (Wants), and counted.
type roomCache struct {
	remoteCache
	bounced *atomic.Int64
}

func (c roomCache) Start(ctx context.Context, req *Request, done func(*Request)) bool {
	if done == nil || req.Op != OpGet || c.Inline(req.Key) {
		return c.remoteCache.Start(ctx, req, done)
	}
	go func() {
		if n, ok := c.Store.Peek(req.Key); ok && req.Room > 0 && n > req.Room {
			c.bounced.Add(1)
			req.Item, req.Val, req.Res, req.Wants = store.Item{}, req.Dst[:0], store.Miss, n
		} else {
			c.Do(req)
		}
		done(req)
	}()
	return true
}

// TestRoomRerun: over a Cache that may wait, a get takes room for its
// value from the connections' memory limit; one whose value is larger
// than the room (replies left unread elsewhere hold most of the limit)
// is answered by its size, waits for room and runs again, and its client,
// reading, gets every reply in order, byte for byte, as if nothing had
// happened.
func TestRoomRerun(t *testing.T) {
	t.Parallel() // its own server's memory only
	const size, limit = 900_000, 2 << 20
	bounced := new(atomic.Int64)
	srv, st := limitedServer(t, 1, 1<<20, limit, func(st *store.Store) Cache { return roomCache{newRemoteCache(st), bounced} })
	addr := serveOn(t, srv, sndListener(t, 16<<10))
	vals := map[string]string{}
	for i := range 3 {
		k, v := fmt.Sprintf("rbig%d", i), strings.Repeat(string(rune('a'+i)), size+i)
		vals[k] = v
		if res, _ := st.Set([]byte(k), []byte(v), &store.SetOptions{}); res != store.Stored {
			t.Fatal(res)
		}
	}
	// Values nobody reads: less than half the limit is left, less than
	// a value (what the kernel takes of the first aside).
	hog := smallRcvDial(t, addr)
	io.WriteString(hog, "get rbig0\r\nget rbig1\r\n")
	testutil.WaitFor(t, 5*time.Second, "the unread replies to hold half the limit", func() bool {
		return srv.Stats().ConnMem.ResponseBytes > size/2
	})
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	keys := []string{"rbig2", "rbig1", "nothing", "rbig0", "rbig2"}
	exchange := func(keys []string) {
		t.Helper()
		var req, want bytes.Buffer
		for _, k := range keys {
			fmt.Fprintf(&req, "get %s\r\n", k)
			if v, ok := vals[k]; ok {
				fmt.Fprintf(&want, "VALUE %s 0 %d\r\n%s\r\n", k, len(v), v)
			}
			want.WriteString("END\r\n")
		}
		c.Write(req.Bytes())
		got := make([]byte, want.Len())
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("%q: read %d bytes: %v", keys, want.Len(), err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("%q: replies differ from the values (%d bytes)", keys, len(got))
		}
	}
	// One at a time: each parks (Start), and a value without room comes
	// back as its size first.
	for _, k := range keys {
		exchange([]string{k})
	}
	if bounced.Load() == 0 || srv.mem.rerun.Load() == 0 {
		t.Errorf("no get was answered by its size (%d) or run again (%d): the test saw no lack of room", bounced.Load(), srv.mem.rerun.Load())
	}
	// Pipelined: answered together off the loop, batch by batch within
	// the room (coalesce.go, connroom.go).
	exchange(keys)
	if taken := srv.mem.roomTaken.Load(); taken != 0 {
		t.Errorf("%d bytes of room still taken with no get running", taken)
	}
}

// TestUnreadCoalescedGetsBounded: pipelined gets of keys served
// elsewhere are answered together, on a goroutine (coalesce.go); their
// replies count against the limit batch by batch, a batch waits while
// the replies hold more than it, and writes that wait unread through such
// a spell close their connections, as on the loop. 40 connections that
// each asked for 8 values of 1 MB and read nothing grew the heap by 77 MB
// before, 160 KB of it counted, and none was closed.
func TestUnreadCoalescedGetsBounded(t *testing.T) {
	const size, hogs, limit = 1_000_000, 40, 2 << 20
	srv, st := limitedServer(t, 1, 1<<20, limit, func(st *store.Store) Cache { return newRemoteCache(st) })
	addr := serveOn(t, srv, sndListener(t, 16<<10))
	var gets strings.Builder
	for i := range 8 {
		if res, _ := st.Set(fmt.Appendf(nil, "rbig%d", i), []byte(strings.Repeat("v", size)), &store.SetOptions{}); res != store.Stored {
			t.Fatal(res)
		}
		fmt.Fprintf(&gets, "get rbig%d\r\n", i)
	}
	hogsBounded(t, srv, addr, gets.String(), hogs, 8*limit, "pipelined gets") // answered together (key "r...": may wait)
}
