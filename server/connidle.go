package server

import (
	"sync"

	"shoal/protocol"
	"shoal/store"
)

// outBase is the size of the reply buffers lent to connections under an
// event loop (outPool); a connection waiting for input holds none.
const outBase = 4096

// heldMem is what a connection held when it was last accounted in the
// server's connMem.
type heldMem struct{ in, out, outOver, outN int64 }

// account brings the server's connection memory up to date with what c
// holds now. Only c's owner calls it.
func (c *conn) account() {
	m := &c.srv.mem
	in, out := int64(0), int64(cap(c.out)+c.valHeld)
	if c.r != nil {
		in = int64(c.r.Held())
	}
	over, n := max(0, out-outBase), min(1, out)
	m.readBufs.Add(in - c.mem.in)
	m.outBufs.Add(out - c.mem.out)
	m.outCount.Add(n - c.mem.outN)
	m.used.Add(over - c.mem.outOver)
	c.mem = heldMem{in, out, over, n}
	if over > 0 && m.outOver() && m.watching.CompareAndSwap(false, true) {
		go c.srv.watchReplies() // every loop watches its connections' replies
	}
}

// waitMemory reports whether c must wait before its next retrieval or
// value because the replies waiting for sockets hold more than the limit
// (see connMem): under an event loop only, not on the peer port, and only
// c's loop runs it. It marks c for its loop (memBlocked), which lists it
// (loop.waitMem).
func (c *conn) waitMemory() bool {
	if c.ev.loop == nil || c.hand.running || c.srv.cfg.PeerExtensions || !c.srv.mem.outOver() {
		return false // the peer port: a member waiting a peer timeout marks this node down
	}
	c.ev.memBlocked = true
	return true
}

// fitsBase reports whether retrieval cmd may run although the replies
// waiting for sockets hold more than the limit: c has none waiting, the
// cache is this node's store (a Local: every key is here to look at), and
// the values cmd would answer, with their headers, fit the reply buffer
// every connection is lent anyway (outBase, which the limit does not
// count). So a client that asks for small values is answered at once
// however many connections wait for their large replies to be read, and
// each connection holds at most one such reply beyond the limit.
//
// Over a Cache that may wait (a cluster node), where a key's value may be
// on another node, a get of one key that parks is let through the same
// way with room for outBase bytes of value (roomFor): the owner, or the
// router for a key served here, answers a larger value by its size, and
// the get then waits its turn for room (rerun; wants, so not small again).
func (c *conn) fitsBase(cmd protocol.Command) bool {
	if c.pending() {
		return false
	}
	if c.srv.remote {
		return c.wants == 0 && c.mayPark() && oneKeyGet(cmd)
	}
	size, known := c.replySize(cmd)
	return known && size <= outBase
}

// oneKeyGet reports whether cmd is a get of one key that goes to the
// Cache's Start (not a multi-get, which GetMulti answers).
func oneKeyGet(cmd protocol.Command) bool {
	switch cmd := cmd.(type) {
	case *protocol.Retrieval:
		return len(cmd.Keys) == 1 && !cmd.BadKey && !cmd.More
	case *protocol.MetaGet:
		return !cmd.HasVivify && !cmd.HasRecache // a win token is not asked for twice
	}
	return retrievesValues(cmd) // a binary get
}

// replySize is about how many bytes retrieval cmd's reply will take,
// looked up before it runs: known only over a Local (every key is here
// to look at) and for at most replySizeKeys keys.
func (c *conn) replySize(cmd protocol.Command) (size int, known bool) {
	if c.srv.remote {
		return 0, false
	}
	var key []byte
	var keys [][]byte
	switch cmd := cmd.(type) {
	case *protocol.Retrieval:
		if cmd.More {
			return 0, false
		}
		keys = cmd.Keys
	case *protocol.MetaGet:
		key = cmd.Key
	case *protocol.Binary:
		key = cmd.Key
	}
	if key != nil {
		keys = [][]byte{key}
	}
	if len(keys) == 0 || len(keys) > replySizeKeys {
		return 0, false
	}
	size = len(protocol.ReplyEnd)
	for _, k := range keys {
		if n, ok := c.srv.items.Peek(k); ok {
			size += n + len(k) + replyHeader
		}
	}
	return size, true
}

// replySizeKeys is how many keys replySize looks up at most; replyHeader
// bounds a value's reply line and ending (VALUE, key aside, flags,
// length, CAS; or the meta and binary equivalents).
const (
	replySizeKeys = 16
	replyHeader   = 64
)

// takeOut gives c a reply buffer, under an event loop, if it has none.
func (c *conn) takeOut() {
	if c.out == nil {
		c.out = c.srv.mem.out.get()
	}
}

// idle lets go of c's buffers while it waits for input: its Request
// forgets the last command's key and value, the read buffer goes back to
// the pool (an unfinished line moves to a buffer of its
// size), and so does the reply buffer, but on the peer port (keepsOut);
// one that grew for large replies is dropped.
func (c *conn) idle() {
	c.req.release()
	c.wants = 0 // a size learned for a retrieval that ended
	c.gets = coalesced{}
	c.r.Release()
	if len(c.out) == 0 && !c.keepsOut() {
		c.srv.mem.out.put(c.out)
		c.out, c.sent, c.held = nil, 0, 0
	}
	c.account()
}

// peerOutKeep is the largest reply buffer a peer port's connection keeps
// while it waits for input.
const peerOutKeep = 64 << 10

// keepsOut reports whether c keeps its reply buffer, empty, while it
// waits for input: on the peer port, whose few connections (one pool per
// member) carry batches of replies, larger than a base buffer, one after
// the other. Each batch grew a fresh buffer the GC then took: allocation
// and collection were 7 % of an owner's CPU under forwarded gets. What a
// kept buffer holds beyond a base one counts against the connection
// memory limit, and none is kept past it: many connections to a peer
// port without a cluster secret hold no more than the limit so.
func (c *conn) keepsOut() bool {
	return c.srv.cfg.PeerExtensions && cap(c.out) <= peerOutKeep && !c.srv.mem.outOver()
}

// free gives back everything c holds; it is closed.
func (c *conn) free() {
	if c.r != nil {
		c.r.Free()
	}
	c.srv.mem.out.put(c.out)
	c.out = nil
	c.account()
}

// touched records that a command arrived, for the idle timeout and stats
// conns.
func (c *conn) touched() {
	c.last.Store(c.srv.items.Now())
	if c.ev.loop != nil {
		c.ev.lastIn = c.ev.loop.now
	}
}

// moreKeys is a classic retrieval whose replies stopped, under an event
// loop, to wait for the socket: the keys from next on are answered once
// it drains. The command's keys alias the read buffer, which stays as it
// is until the retrieval is done (no other command is read meanwhile).
type moreKeys struct {
	cmd     *protocol.Retrieval
	next    int
	opt     *store.GetOptions
	withCAS bool
	// batch is the keys of the next GetMulti call (a Cache that may
	// wait: Server.remote); 0: one request per key.
	batch int
	// endEach: each key is a get of its own (coalesced gets, coalesce.go),
	// answered with its own END.
	endEach bool
}

// mustWait reports whether a retrieval should stop before its next value:
// under an event loop (a goroutine's writes block instead), when more than
// flushAt bytes of replies wait for the socket, or some wait while the
// connections hold more than their memory limit, or the replies waiting
// for sockets do (waitMemory; not for a retrieval let through as small,
// fitsBase).
func (c *conn) mustWait() bool {
	if c.ev.loop == nil || c.hand.running {
		return false
	}
	waiting := len(c.out) - c.sent
	return waiting > flushAt || waiting > 0 && c.srv.mem.over() || !c.ev.small && c.waitMemory()
}

// getKeys answers the keys of c.more from c.more.next on, and reports
// false if it had to stop again (c.more stays set).
func (c *conn) getKeys() bool {
	m := &c.more
	keys := m.cmd.Keys
	for m.next < len(keys) {
		if c.hand.running && m.batch > 0 && c.srv.remote {
			if c.flush(); c.sent == len(c.out) && cap(c.out) > outBase {
				// Grown for a batch, now written: counted whole while
				// kept, it would hold the others, and this one, past the
				// limit for good (TestRoomRerun hung so).
				c.out, c.sent, c.held = make([]byte, 0, outBase), 0, 0
			}
			if c.waitUnder(); c.err != nil {
				*m = moreKeys{} // closed for its stalled replies, or gone
				return true
			}
		}
		if c.mustWait() {
			if len(c.out)-c.sent <= flushAt {
				c.srv.mem.outOOM.Add(1) // stopped for the limit
			}
			c.dropLargeVal() // a stalled connection keeps no large value twice
			return false
		}
		if m.batch > 0 {
			m.next = c.getBatch(m.next)
			continue
		}
		key := keys[m.next]
		m.next++
		it, val, res := c.get(key, m.opt)
		c.val = val
		if c.gaveUp(res) {
			*m = moreKeys{}
			return true
		}
		if c.watching(streamFetchers) {
			c.logGet(key, res == store.Hit, it.Size)
		}
		c.countGet(m.opt != nil, res == store.Hit)
		c.srv.detail.count(key, prefixGet, res == store.Hit)
		if res == store.Hit {
			c.value(key, it, val, m.withCAS)
		}
		c.endKey()
	}
	cmd, each := m.cmd, m.endEach
	*m = moreKeys{}
	if each {
		c.dropLargeVal() // each END is written; as endRetrieval, keep no large buffer
	}
	if !each {
		c.endRetrieval(cmd)
	}
	return true
}

// endKey ends one key's reply of c.more when each key is a get of its own.
func (c *conn) endKey() {
	if c.more.endEach {
		c.line(replyEnd)
	}
}

// getBatch answers keys[from:from+batch] of c.more with one GetMulti call
// and returns the index after them. The batch doubles while its replies
// stay small and halves when they are large, so that a multi-get of
// large values never holds many of them at once.
func (c *conn) getBatch(from int) int {
	m := &c.more
	keys := m.cmd.Keys
	to := min(len(keys), from+m.batch)
	next, size, hits := from, 0, 0
	room := c.batchRoom()
	stop := -1
	c.inBatch = true
	c.cache.GetMulti(c.ctx, keys[from:to], m.opt, func(i int, it store.Item, val []byte) {
		if stop >= 0 || m.endEach && c.ctx.Err() != nil {
			// The misses before this hit may be the cache giving up, and
			// each END answers a get of its own: answer none (gaveUp).
			return
		}
		if room.full(size, len(val), hits) {
			stop = i // this key and those after it go again
			return
		}
		for ; next < from+i; next++ {
			c.missed(keys[next], m.opt != nil)
			c.endKey()
		}
		next = from + i + 1
		size += len(val)
		hits++
		if c.watching(streamFetchers) {
			c.logGet(keys[from+i], true, it.Size)
		}
		c.countGet(m.opt != nil, true)
		c.srv.detail.count(keys[from+i], prefixGet, true)
		c.value(keys[from+i], it, val, m.withCAS)
		c.endKey()
	})
	c.inBatch = false
	c.endBatchRoom(room)
	c.srv.noteBatch(hits, size)
	if c.gaveUp(store.Miss) { // the misses are not reported: any may be one
		return len(keys)
	}
	if stop >= 0 {
		for ; next < from+stop; next++ {
			c.missed(keys[next], m.opt != nil)
			c.endKey()
		}
		// The values after the stop came for nothing: the next batch asks
		// for no more keys than this one kept.
		m.batch = max(1, hits)
		return from + stop
	}
	for ; next < to; next++ {
		c.missed(keys[next], m.opt != nil)
		c.endKey()
	}
	switch {
	case size > batchBytes:
		m.batch = max(1, m.batch/2)
	case size < flushAt && m.batch < maxBatch:
		m.batch *= 2
	}
	return to
}

// missed counts (and logs) a key of a multi-get that missed.
func (c *conn) missed(key []byte, touch bool) {
	c.countGet(touch, false)
	c.srv.detail.count(key, prefixGet, false)
	if c.watching(streamFetchers) {
		c.logGet(key, false, 0)
	}
}

// maxBatch bounds the keys of one GetMulti call.
const maxBatch = 1024

// firstBatch is the keys of a retrieval's first GetMulti call: 32, or
// fewer when the values multi-gets returned lately were large, so that a
// batch starts near batchBytes of values. The values of a batch are held
// together until it is answered (a cluster's owners answer each batch
// whole), so a client pipelining gets of 1 MB values, answered together
// (coalesce.go), holds about one of them, not 32.
func (s *Server) firstBatch() int {
	avg := s.mgValue.Load()
	if avg <= 0 {
		return 32
	}
	return int(min(32, max(1, batchBytes/avg)))
}

// batchBytes is the values a GetMulti call aims at: past it, the next
// call of the retrieval halves (getBatch).
const batchBytes = flushAt * 16

// noteBatch folds a GetMulti call's hits (n values of size bytes in all)
// into the running mean value size firstBatch reads (an exponential mean
// over calls, weight 1/8).
func (s *Server) noteBatch(n, size int) {
	if n == 0 {
		return
	}
	v := int64(size / n)
	for {
		old := s.mgValue.Load()
		nv := v
		if old > 0 {
			nv = old + (v-old)/8
		}
		if s.mgValue.CompareAndSwap(old, nv) {
			return
		}
	}
}

// outPool lends reply buffers of outBase bytes.
type outPool struct{ p sync.Pool }

func (o *outPool) get() []byte {
	if a, ok := o.p.Get().(*[outBase]byte); ok {
		return a[:0]
	}
	return make([]byte, 0, outBase)
}

// put takes back a buffer get lent; one that grew is left to the GC.
func (o *outPool) put(b []byte) {
	if cap(b) == outBase {
		o.p.Put((*[outBase]byte)(b[:outBase]))
	}
}
