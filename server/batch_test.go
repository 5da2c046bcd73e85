package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/store"
)

// readerCache completes the gets of keys "r..." on one goroutine of its
// own, as a peer client's reader does: it takes every request queued
// since its last round, completes each marked Batched, then calls the
// Batch's Send.
type readerCache struct {
	Local
	batch *Batch
	mu    sync.Mutex
	queue []pendingGet
	more  chan struct{}
}

type pendingGet struct {
	req  *Request
	done func(*Request)
}

// startReaderCache makes a readerCache over st with a Batch of its own
// and runs its reader until t ends.
func startReaderCache(t *testing.T, st *store.Store) *readerCache {
	b := NewBatch(BatchConfig{})
	t.Cleanup(b.Close)
	c := &readerCache{Local: Local{st}, batch: b, more: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go c.read(ctx)
	t.Cleanup(cancel)
	return c
}

func (c *readerCache) Inline(key []byte) bool {
	return key != nil && !bytes.HasPrefix(key, []byte("r"))
}

func (c *readerCache) Start(ctx context.Context, req *Request, done func(*Request)) bool {
	if done == nil || req.Op != OpGet || c.Inline(req.Key) {
		c.Do(req)
		return false
	}
	c.mu.Lock()
	c.queue = append(c.queue, pendingGet{req, done})
	c.mu.Unlock()
	select {
	case c.more <- struct{}{}:
	default:
	}
	return true
}

// read is the reader: rounds of completions until ctx ends.
func (c *readerCache) read(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.more:
		}
		time.Sleep(200 * time.Microsecond) // a peer's batch of replies gathers
		c.mu.Lock()
		round := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, p := range round {
			c.Do(p.req)
			p.req.Batched = true
			p.done(p.req)
		}
		c.batch.Send()
	}
}

// TestBatchSameReplies: many connections' gets completed together on
// another goroutine, their replies held by the server's Batch and sent
// in one io_uring call each round, get the very bytes a goroutine per
// connection over the plain store sends, writes and local gets between
// them; and the Batch sent several per call.
func TestBatchSameReplies(t *testing.T) {
	t.Parallel()
	const conns, rounds = 24, 60
	// Each connection sends one command at a time and reads its reply
	// (ending in end) before the next: a connection whose reply waits has
	// nothing behind it, as at depth 1, and the Batch may hold it.
	type step struct{ req, end string }
	steps := make([][]step, conns)
	for i := range steps {
		for j := range rounds {
			k := fmt.Sprintf("%s%d-%d", []string{"r", "l"}[j%3/2], i, j%7)
			switch j % 5 {
			case 0:
				v := fmt.Sprintf("v%d-%d", i, j)
				steps[i] = append(steps[i], step{fmt.Sprintf("set %s %d 0 %d\r\n%s\r\n", k, j, len(v), v), "STORED\r\n"})
			case 1:
				steps[i] = append(steps[i], step{fmt.Sprintf("mg r%d-x v\r\nmn\r\n", i), "MN\r\n"})
			default:
				steps[i] = append(steps[i], step{fmt.Sprintf("get %s\r\n", k), "END\r\n"})
			}
		}
	}
	replies := func(cfg Config, batched bool) ([]string, *Server) {
		st, err := store.New(store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		var cache Cache = Local{st}
		if batched {
			rc := startReaderCache(t, st)
			cfg.Batch, cache = rc.batch, rc
		}
		srv, addr := serve(t, cfg, cache)
		out := make([]string, conns)
		var wg sync.WaitGroup
		for i := range conns {
			nc := dial(t, addr)
			wg.Go(func() {
				var got bytes.Buffer
				buf := make([]byte, 16<<10)
				for _, s := range steps[i] {
					io.WriteString(nc, s.req)
					for !bytes.HasSuffix(got.Bytes(), []byte(s.end)) {
						n, err := nc.Read(buf)
						got.Write(buf[:n])
						if err != nil {
							t.Errorf("conn %d after %d bytes: %v", i, got.Len(), err)
							return
						}
					}
				}
				out[i] = got.String()
			})
		}
		wg.Wait()
		return out, srv
	}
	want, _ := replies(Config{}, false)
	got, srv := replies(Config{EventLoop: true, Loops: 1}, true)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("conn %d: batched replies\n%q\nwant\n%q", i, got[i], want[i])
		}
	}
	pr := srv.Stats().PeerReplies
	t.Logf("the Batch held %d replies, sent in %d calls", pr.Sends, pr.Calls)
	if pr.Sends == 0 || pr.Sends < 2*pr.Calls {
		t.Errorf("the Batch held %d replies, sent in %d calls: want some, at least two per call", pr.Sends, pr.Calls)
	}
}

// TestBatchConnGone: connections that close while their reply is away or
// held in the Batch are sent to (or fail) without touching another
// socket, and are forgotten; the server serves on and shuts down (run
// with -race).
func TestBatchConnGone(t *testing.T) {
	t.Parallel()
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	st.Set([]byte("r1"), []byte("v"), &store.SetOptions{})
	rc := startReaderCache(t, st)
	srv, addr := serve(t, Config{EventLoop: true, Loops: 1, Batch: rc.batch}, rc)
	for range 100 {
		nc := dial(t, addr)
		io.WriteString(nc, "get r1\r\n")
		nc.Close()
	}
	for range 20 {
		c := dial(t, addr)
		served(t, c, "after the closed ones")
		c.Close()
	}
	if lines, err := testutil.TextLines(addr, "get r1\r\n", 3); err != nil || lines[1] != "v" {
		t.Fatalf("get r1: %q %v", lines, err)
	}
	testutil.WaitFor(t, 5*time.Second, "no connections left", func() bool { return srv.Stats().CurrConnections == 0 })
}
