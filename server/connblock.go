package server

import (
	"crypto/tls"
	"sync"
	"time"

	"shoal/protocol"
)

// Replies past the connections' memory limit on the goroutine driver
// (--conn-goroutines, and every connection an event loop cannot take: a
// TLS one), whose writes block instead of waiting for EPOLLOUT. The same
// bound as under the loops (connMem), by blocking means:
//
//   - a retrieval waits while the replies waiting for sockets hold more
//     than the limit (admit, waitUnder; one whose reply fits a base
//     buffer runs), until the spell ends (connMem.spellEnd) or the
//     connection's context does (Shutdown, DropConns), and the size of
//     the values it will answer is counted before it runs (valHeld), so
//     that retrievals admitted at once see each other;
//   - a large reply goes out in chunks of writeChunk, each write marked
//     (blockedWrite), and Server.watchReplies ends, through the
//     connection's write deadline, a chunk's write whose socket's send
//     queue held bytes, unmoved, through stallLimit of the spell
//     (kickStalled): when it took nothing, its connection is closed, as
//     loop.memSweep closes one under a loop; a client that reads, however
//     slowly, keeps it. A TLS write that timed
//     out cannot go on, so a TLS connection's chunks are one record
//     (tlsChunk) and a kicked one closes.
//   - a reply buffer grown for a large reply goes once it is written.
//
// Without this, a thousand connections asking for a 1 MB value each and
// reading nothing held 485 MB on the goroutine driver (its blocked writes
// were not even counted).

// writeChunk is the most the goroutine driver writes at once of a large
// reply, tlsChunk on a TLS connection (one record): the watcher looks at
// each write (kickStalled).
const (
	writeChunk = 64 << 10
	tlsChunk   = 16 << 10
)

// blockedWrite is a goroutine driver's write of a large reply in
// progress, as the reply watcher sees it. mu orders the watcher's kick
// against the end of the write: a kick lands on the write it was meant
// for, and its past deadline is cleared before the next.
type blockedWrite struct {
	mu sync.Mutex
	// since: unix nanoseconds since the current chunk's write began or
	// its socket's send queue last moved; 0 while not writing one.
	since int64
	// queued: the socket's send queue when the watcher last looked
	// (sendQueueOf), -1 before it looks or where it cannot.
	queued int
	// kicked: the watcher ended the write (its deadline passed).
	kicked bool
}

// flushBlocking is flush on the goroutine driver for a reply larger than
// a chunk: counted in the connections' memory first, then written a
// chunk at a time (writeChunks); the buffer, grown for it, goes.
func (c *conn) flushBlocking() error {
	c.account()
	c.sent += c.writeChunks(c.out[c.sent:])
	c.out, c.sent, c.held = make([]byte, 0, outBase), 0, 0
	c.account()
	return c.err
}

// writeChunks writes p on the goroutine driver a chunk at a time, each
// write marked for the reply watcher (blockedWrite), and returns how much
// it wrote; a failed write sets c.err. A write the watcher ended closes
// the connection unless it took some bytes: a client that reads, however
// slowly, keeps its connection, as under a loop. But a TLS write that
// timed out cannot go on (crypto/tls), so its chunks are a TLS record's.
func (c *conn) writeChunks(p []byte) int {
	chunk := writeChunk
	_, isTLS := c.nc.(*tls.Conn)
	if isTLS {
		chunk = tlsChunk
	}
	sent := 0
	for sent < len(p) && c.err == nil {
		end := min(len(p), sent+chunk)
		b := &c.blocked
		b.mu.Lock()
		b.since, b.queued = time.Now().UnixNano(), -1
		b.mu.Unlock()
		n, err := c.w.Write(p[sent:end])
		b.mu.Lock()
		kicked := b.kicked
		b.since, b.kicked = 0, false
		if kicked {
			c.nc.SetWriteDeadline(time.Time{})
		}
		b.mu.Unlock()
		c.ctr.bytesWritten.Add(int64(n))
		sent += n
		switch {
		case err == nil:
		case kicked && n > 0 && !isTLS:
			// Taken on, slowly: the write goes on.
		case kicked:
			c.srv.mem.evicted.Add(1)
			c.srv.log.Warn("connection closed: its replies waited unread while connections held more than their memory limit",
				"remote", c.raddr.String(), "waiting", len(p)-sent, "limit", c.srv.mem.limit)
			c.err = err
		default:
			c.err = err
		}
	}
	return sent
}

// admit holds retrieval cmd on the goroutine driver while the replies
// waiting for sockets hold more than the limit, unless its reply fits a
// base buffer (waitUnder), then counts the values it will answer with the
// replies (valHeld, when replySize knows them) before it runs: many
// connections' retrievals admitted at once see each other, where the
// counting of each value once copied came too late (100 connections
// asking at once for a 1 MB value each all went through). Not on the peer
// port (see waitMemory).
func (c *conn) admit(cmd protocol.Command) {
	if c.srv.cfg.PeerExtensions {
		return
	}
	size, known := c.replySize(cmd)
	if known && size <= outBase {
		return
	}
	if c.srv.mem.outOver() {
		c.waitUnder()
	}
	if size > 0 {
		c.valHeld = size
		c.account()
	}
}

// waitUnder holds a retrieval on the goroutine driver while the replies
// waiting for sockets hold more than the limit, until they hold less or
// the connection ends; the replies before it go out first, and a
// connection served before goes ahead of those never served.
func (c *conn) waitUnder() {
	m := &c.srv.mem
	if c.flush() != nil {
		return
	}
	c.account()
	counted := false
	for m.outOver() {
		end := m.spellEnd()
		if m.watching.CompareAndSwap(false, true) {
			go c.srv.watchReplies()
		}
		if !m.outOver() {
			return
		}
		if !counted {
			counted = true
			m.outOOM.Add(1) // a retrieval made to wait (response_obj_oom)
		}
		select {
		case <-end:
		case <-c.ctx.Done():
			return
		}
		if c.ctr.bytesWritten.Load() == 0 {
			// Never served: those served before go first (as
			// loop.waitMem lists them), a client that reads not
			// queued behind many that may never read. Longer than a
			// loop's look at its waiters (memRetryMs): a thousand
			// connections' batches off their loop, let go at once,
			// kept a client served before waiting 5 s on its loop.
			time.Sleep(3 * memRetryMs * time.Millisecond)
		}
	}
}

// spell is the end of a spell past the limit, for waitUnder: closed by
// the reply watcher once the replies hold less (endSpell).
type spell struct {
	mu  sync.Mutex
	end chan struct{}
}

// spellEnd returns a channel closed when the current spell ends.
func (m *connMem) spellEnd() <-chan struct{} {
	m.spell.mu.Lock()
	defer m.spell.mu.Unlock()
	if m.spell.end == nil {
		m.spell.end = make(chan struct{})
	}
	return m.spell.end
}

// endSpell wakes the retrievals waitUnder holds.
func (m *connMem) endSpell() {
	m.spell.mu.Lock()
	defer m.spell.mu.Unlock()
	if m.spell.end != nil {
		close(m.spell.end)
		m.spell.end = nil
	}
}

// kickStalled ends the blocked writes of goroutine-driven connections
// whose current chunk has been written for stallLimit of the spell that
// began at from, their socket's send queue still all that time (see
// blockedWrite, writeChunks).
func (s *Server) kickStalled(from, now time.Time) {
	if s.cfg.PeerExtensions {
		return
	}
	limit := now.Add(-stallLimit)
	if from.After(limit) {
		return // the spell is younger than stallLimit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.nc != nil {
			c.blocked.kick(c, now, limit)
		}
	}
}

// kick ends the write of c's chunk if it began before limit and its
// socket's send queue has held bytes, unmoved, since: a client that
// reads slowly empties the queue by a little at a time, which the write
// does not see until the kernel wakes it, and an empty queue waits on
// the writer, not the client (a writer held off the CPU past stallLimit
// on a busy CI machine closed a reading client).
func (b *blockedWrite) kick(c *conn, now, limit time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.since == 0 || b.kicked {
		return
	}
	q := sendQueueOf(c.nc)
	if q == 0 || (b.queued >= 0 && q != b.queued) {
		b.since = now.UnixNano() // its client took all or some
	}
	b.queued = q
	if time.Unix(0, b.since).After(limit) {
		return
	}
	b.kicked = true
	c.nc.SetWriteDeadline(time.Unix(0, 1)) // in the past: the write returns
}
