package server

import (
	"sync"
	"sync/atomic"
	"time"

	"shoal/protocol"
)

// connMem is the memory the server's connections hold outside the store:
// read buffers (lent from a pool while a connection has input to parse),
// data blocks being received, and replies waiting for the socket. One
// limit covers it all (Config.ConnMemLimit):
//
//   - a data block that would take the total past the limit is refused,
//     as memcached refuses an item it has no memory for ("SERVER_ERROR out
//     of memory storing object"), and swallowed as it arrives;
//   - a connection with replies waiting does not start another value
//     while the total is past the limit (conn.mustWait), so replies wait
//     in the client's socket, not in the node.
//   - under an event loop, while the replies waiting for their sockets
//     hold more than the limit (outOver), no connection starts a
//     retrieval or a retrieval's next value (waitMemory; other commands
//     run): it waits on its loop (memWait), those served before first,
//     until they hold less. A retrieval whose reply fits the base reply
//     buffer every connection is lent anyway runs at once, on a
//     connection with no reply waiting, over a Local (fitsBase: its keys'
//     sizes are looked up first), so a client asking for small values is
//     not queued behind large unread ones. Replies drain as their clients
//     read; a connection whose replies waited stallLimit of such a spell
//     with no byte of them taken is closed (loop.memSweep; the goroutine
//     driver's bound is in connblock.go). Not on the peer port:
//     a member whose requests wait a peer timeout marks this node down.
//     so clients that never read cannot hold the node's memory, nor make
//     the others wait, for long. Server.watchReplies wakes every loop
//     while it lasts. Without this each connection could always answer
//     one value, held whole until its client read it: a thousand
//     connections asking for a 1 MB value and reading nothing held a
//     gigabyte, where memcached, which sends items by reference, holds
//     nothing more. A get forwarded to a peer is let through before its
//     value arrives, so a burst of them is not held back (counted once
//     the value is in).
//
// Each connection's replies are bounded on their own too: a retrieval
// stops while more than flushAt bytes wait for the socket (conn.more).
type connMem struct {
	limit    int64
	used     atomic.Int64 // held beyond one base buffer per connection, in and out
	readBufs atomic.Int64 // bytes of read buffers held, all connections
	outBufs  atomic.Int64 // bytes of reply buffers held, all connections
	outCount atomic.Int64 // connections holding a reply buffer
	readOOM  atomic.Int64 // data blocks refused for the limit
	outOOM   atomic.Int64 // retrievals made to wait for the limit (mustWait, waitMem, waitUnder)
	evicted  atomic.Int64 // connections closed for replies left unread (memSweep, writeChunks)
	// roomTaken: bytes of room gets waiting on other nodes took for their
	// values (connroom.go), counted with the replies; rerun: gets run
	// again because their value did not fit the room.
	roomTaken, rerun atomic.Int64
	// watching: a Server.watchReplies runs, waking the loops while the
	// replies hold more than the limit.
	watching atomic.Bool
	spell    spell // its end, for the goroutine driver's retrievals (waitUnder)
	bufs     bufPool
	out      outPool
}

// Grow implements protocol.Budget.
func (m *connMem) Grow(n int) bool {
	if m.used.Add(int64(n)) > m.limit {
		m.used.Add(-int64(n))
		m.readOOM.Add(1)
		return false
	}
	return true
}

// Release implements protocol.Budget.
func (m *connMem) Release(n int) { m.used.Add(-int64(n)) }

// Replies past the connections' memory limit (see connMem): how often a
// loop with connections waiting for memory looks again, how often it
// sweeps, and how long a connection's replies may wait with no byte of
// them taken by its client, through a spell past the limit, before it is
// closed.
const (
	memRetryMs    = 10
	memSweepEvery = 100 * time.Millisecond
	stallLimit    = 300 * time.Millisecond
)

// over reports whether the connections hold more than the limit.
func (m *connMem) over() bool { return m.used.Load() > m.limit }

// outOver reports whether the connections' reply buffers hold more than
// the limit beyond one base buffer each (replies waiting for sockets),
// with the room gets waiting on other nodes took for their values.
func (m *connMem) outOver() bool {
	return m.outHeld()+m.roomTaken.Load() > m.limit
}

// outHeld is what the connections' reply buffers hold beyond one base
// buffer each.
func (m *connMem) outHeld() int64 {
	return m.outBufs.Load() - outBase*m.outCount.Load()
}

// bufPool lends read buffers of protocol.BufferSize bytes; a connection
// waiting for input holds none (protocol.Reader.Release), so idle
// connections cost little however many there are.
type bufPool struct {
	p   sync.Pool
	out atomic.Int64 // buffers lent
}

var _ protocol.Buffers = (*bufPool)(nil)

func (b *bufPool) Get() []byte {
	b.out.Add(1)
	if a, ok := b.p.Get().(*[protocol.BufferSize]byte); ok {
		return a[:]
	}
	return make([]byte, protocol.BufferSize)
}

func (b *bufPool) Put(buf []byte) {
	b.out.Add(-1)
	b.p.Put((*[protocol.BufferSize]byte)(buf))
}

// ConnMem is the memory connections hold outside the store, under
// memcached 1.6's stats names where they exist.
type ConnMem struct {
	// ResponseCount and ResponseBytes: reply buffers held and their bytes
	// (response_obj_count, response_obj_bytes).
	ResponseCount, ResponseBytes int64
	// ResponseOOM: retrievals made to wait because connections held more
	// than the limit (response_obj_oom).
	ResponseOOM int64
	// ReadBufCount and ReadBufBytes: read buffers lent and the bytes of
	// all read buffers, data blocks being received included
	// (read_buf_count, read_buf_bytes).
	ReadBufCount, ReadBufBytes int64
	// ReadBufOOM: data blocks refused for the limit (read_buf_oom).
	ReadBufOOM int64
	// Evicted: connections closed because their replies waited unread
	// while the replies held more than the limit (shoal's; not in stats).
	Evicted int64
	// Held and Limit: what counts against the limit, and the limit.
	Held, Limit int64
}

func (m *connMem) snapshot() ConnMem {
	return ConnMem{
		ResponseCount: m.outCount.Load(), ResponseBytes: m.outBufs.Load(), ResponseOOM: m.outOOM.Load(),
		ReadBufCount: m.bufs.out.Load(), ReadBufBytes: m.readBufs.Load(), ReadBufOOM: m.readOOM.Load(),
		Evicted: m.evicted.Load(),
		Held:    m.used.Load(), Limit: m.limit,
	}
}
