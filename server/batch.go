package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// Batch sends together the replies of requests completed on a goroutine
// other than their connection's loop: a cluster node's peer client reader
// completes the gets it forwarded, many per read of the peer's replies,
// and a send(2) for each cost more here than the send itself. A
// completion marked Request.Batched leaves its connection's reply in the
// Batch (conn.done); the completing goroutine calls Send once it has
// completed what it had (peer.Config.RepliesHandled), and the replies go
// out in one io_uring_enter (ringsend_linux.go). Then each connection goes
// on as after its own write: idle on its loop again, or handed back to
// it.
//
// Any goroutine may call Send at any time, and must after it completed
// a request it marked Batched: a reply waits until some Send. A
// connection waits only when nothing else does (as comeBack's flush):
// within a base reply buffer, nothing buffered or arrived behind it.
// Without io_uring (NoIOUring, or a kernel that refuses it) nothing waits.
type Batch struct {
	log     *slog.Logger
	waiting atomic.Int32 // len(conns), read without mu by Send
	mu      sync.Mutex
	conns   []*conn
	out     ringSender // its zero value sends nothing (ringsend_linux.go)
	// held counts the replies held, calls the Sends that sent some.
	held, calls atomic.Int64
}

// BatchConfig configures a Batch.
type BatchConfig struct {
	NoIOUring bool         // send each reply with its own send(2): the Batch holds none
	Logger    *slog.Logger // nil discards
}

// NewBatch makes a Batch; Close releases it.
func NewBatch(cfg BatchConfig) *Batch {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Batch{log: log}
	if !cfg.NoIOUring {
		b.out = newBatchSender(log)
	}
	return b
}

// hold leaves c's replies in b and reports whether it did: the Batch
// sends, when it can and c's replies are within a base buffer. c is
// away, its command finished; the goroutine that completed it owns it
// and hands it to b, which owns it until Send.
func (b *Batch) hold(c *conn) bool {
	if b == nil || !c.pending() || len(c.out)-c.sent > outBase {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.out.ok() {
		return false
	}
	c.held = len(c.out) // handed to a write, as flush does
	c.account()
	b.conns = append(b.conns, c)
	b.waiting.Add(1)
	b.held.Add(1)
	return true
}

// Send sends the replies waiting in b, in one system call, and goes on
// with each connection as comeBack does after its flush.
func (b *Batch) Send() {
	if b == nil || b.waiting.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := b.conns
	b.waiting.Store(0)
	if len(cs) > 0 {
		b.calls.Add(1)
	}
	res := b.out.send(cs)
	for i, c := range cs {
		c.applySend(res[i])
		if !c.idleAgain() {
			c.ev.loop.handBack(c)
		}
		c.srv.wg.Done() // added by release; done left it to b
		cs[i] = nil
	}
	b.conns = cs[:0]
}

// Close releases b's ring; a Send after it sends each reply with its own
// send(2).
func (b *Batch) Close() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out.close()
}

// counts is how many replies b held (Sends) and in how many Sends they
// went (Calls).
func (b *Batch) counts() BatchedSends {
	if b == nil {
		return BatchedSends{}
	}
	return BatchedSends{Calls: b.calls.Load(), Sends: b.held.Load()}
}
