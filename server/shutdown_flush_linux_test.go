package server

import (
	"bufio"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"shoal/store"
)

// flushedCache is a Cache over a local store whose gets of keys
// starting with "q" go out only when Flush is called (as a cluster
// router's forwarded gets are queued on a peer connection until the loop
// flushes it), and whose get of "block" holds the loop until gate closes.
type flushedCache struct {
	Local
	blocked, gate chan struct{}
	mu            sync.Mutex
	queued        []func()
}

func (*flushedCache) Inline([]byte) bool { return true }

func (c *flushedCache) Start(ctx context.Context, req *Request, done func(*Request)) bool {
	switch {
	case req.Op == OpGet && string(req.Key) == "block":
		close(c.blocked)
		<-c.gate
	case req.Op == OpGet && len(req.Key) > 0 && req.Key[0] == 'q' && done != nil:
		c.mu.Lock()
		c.queued = append(c.queued, func() { c.Do(req); done(req) })
		c.mu.Unlock()
		return true
	}
	c.Do(req)
	return false
}

// Flush "sends" what Start queued: the owner answers at once.
func (c *flushedCache) Flush() {
	c.mu.Lock()
	q := c.queued
	c.queued = nil
	c.mu.Unlock()
	for _, f := range q {
		go f()
	}
}

// TestShutdownFlushesQueuedGets: a get that Start queued (pending until
// Flush) in the same loop wake-up as the loop's stop is still flushed, so
// it completes and its client gets its answer. Before the fix the loop
// returned on the stop before its end-of-wake-up Flush: the get was never
// sent, Shutdown waited for it, and a cluster node answered it, after the
// peer timeout, with a miss (TestClusterRollingRestart, e2e/cluster).
func TestShutdownFlushesQueuedGets(t *testing.T) {
	st, err := store.New(store.Config{MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	st.Set([]byte("q1"), []byte("v"), nil)
	cache := &flushedCache{Local: Local{st}, blocked: make(chan struct{}), gate: make(chan struct{})}
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1}, cache)
	c1, c2 := dial(t, addr), dial(t, addr)
	r2 := served(t, c2, "c2") // c2 is on the loop
	// The loop is held inside c1's Start while c2's get arrives and the
	// stop is asked for: its next wake-up has both, c2's first.
	io.WriteString(c1, "get block\r\n")
	select {
	case <-cache.blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("get block never reached Start")
	}
	io.WriteString(c2, "get q1\r\n")
	time.Sleep(50 * time.Millisecond) // c2's bytes are in its socket
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	l := srv.loops[0]
	for stopped := false; !stopped; {
		time.Sleep(time.Millisecond)
		l.mu.Lock()
		stopped = l.stopped
		l.mu.Unlock()
	}
	close(cache.gate)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v: the get queued in the loop's last wake-up was never flushed", err)
	}
	got, _ := io.ReadAll(bufio.NewReader(r2))
	if string(got) != "VALUE q1 0 1\r\nv\r\nEND\r\n" {
		t.Fatalf("get q1 answered %q, want its value", got)
	}
}
