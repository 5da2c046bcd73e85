package server

import (
	"errors"
	"time"

	"shoal/protocol"
)

// errStalled closes a connection whose command off its loop waited
// stallLimit to write, no byte taken, through a spell past the limit
// (waitWritable).
var errStalled = errors.New("server: replies left unread while connections held more than their memory limit")

// Room for forwarded values. A get over a Cache that may wait (a cluster
// node's router) may be served by another node: its value is not here to
// look at before it runs, so the bound on replies (connMem, outOver)
// cannot count it until it arrives. A thousand connections asking for a
// 1 MB value each and reading nothing sent about 500 such gets to the
// other node of a two-node cluster before any value was in; the peer link
// then carried ~500 MB, the oldest request waited out four peer timeouts
// while the replies streamed in, and the node marked its peer down
// (forward failures, misses, "SERVER_ERROR cluster: no owner reachable").
//
// So a get under an event loop takes room for its value before it starts
// (roomFor): as much as the limit leaves beside the replies waiting for
// sockets and the room other gets took, up to the item size limit
// (connMem.grant). The Cache asks the owner for no more (Request.Room); a
// larger value comes back as its size alone (Request.Wants), and the
// command runs again once the replies leave room for it, with that much
// (rerun): it waits as any retrieval does past the limit, since the room
// taken counts with the replies (outOver). The room goes back when the
// get completes (endRoom), and its value, if any, is then counted as a
// reply. Below outBase nothing is taken: the reply buffer every
// connection is lent anyway holds such a value.

// grant takes room for the value of a get about to start: half of what
// the limit leaves, at most most bytes, and at least want (the size an
// owner gave for a value that did not fit before). It returns the room and the
// bytes taken (0 for the outBase floor), to be given back by giveBack.
func (m *connMem) grant(want, most int) (room int, taken int64) {
	for {
		t := m.roomTaken.Load()
		free := m.limit - m.outHeld() - t
		r := min(free/2, int64(most)) // half: the room taken never passes the limit by itself
		if want > 0 {
			r = max(r, int64(want))
		}
		if r <= outBase {
			return outBase, 0
		}
		// Taken against what was read: goroutines let go at once at the
		// end of a spell would otherwise each take half of the same room.
		if m.roomTaken.CompareAndSwap(t, t+r) {
			return int(r), r
		}
	}
}

// giveBack returns room taken by grant.
func (m *connMem) giveBack(taken int64) {
	if taken != 0 {
		m.roomTaken.Add(-taken)
	}
}

// roomFor sets c.req's Room before Start, for a get on a client port over
// a Cache that may wait: room for its value taken from the limit (grant),
// at least what the owner said it needs when this is its second run.
func (c *conn) roomFor() {
	q := c.req
	q.Room, q.Wants = 0, 0
	if q.Op != OpGet || !c.srv.remote || c.srv.cfg.PeerExtensions {
		return
	}
	if c.ev.small {
		q.Room = outBase // let through past the limit: a small value only (fitsBase)
		return
	}
	q.Room, c.room = c.srv.mem.grant(c.wants, c.srv.cfg.MaxItemSize)
	c.wants = 0
}

// endRoom gives back the room c.req took, once it completed.
func (c *conn) endRoom() {
	c.srv.mem.giveBack(c.room)
	c.room = 0
}

// rerun reports whether c.req, cmd's get, completed without its value
// for lack of room (Wants): cmd then runs again before anything else the
// connection sent (c.ev.memCmd), once the replies leave room for it
// (process waits for memory before a retrieval), asking for that much.
// Nothing is answered meanwhile.
func (c *conn) rerun(cmd protocol.Command) bool {
	if c.req.Wants == 0 {
		return false
	}
	c.wants = c.req.Wants
	c.ev.memCmd = cmd
	c.hand.start = time.Time{} // its run again is the one timed, if any
	c.srv.mem.rerun.Add(1)
	return true
}

// Off its loop (a multi-key retrieval, or pipelined gets answered
// together, run on a goroutine over a Cache that may wait), a retrieval
// is bounded the same way, batch by batch: it waits before each batch
// while the replies hold more than the limit (getKeys: waitUnder), takes
// room for the batch's values (batchRoom), and keeps the values in key
// order while they fit it: the first that does not ends the batch, and
// the keys from it on go in the next (a value larger than the room, first
// of its batch, goes next with room for it: wants). Its replies are
// counted as soon as the batch ends. Its writes never block while the
// Cache is handing values over (inBatch, fdWriter): a multi-get holding
// other owners' values would make every other one wait on this client's
// socket. Without this, a thousand connections whose pipelined gets were
// answered together held a gigabyte on a two-node cluster.

// batchRoom is the room of one batch of values (nil: any, on its loop or
// over a Local, where the loop bounds the replies itself).
type batchRoom struct {
	room  int
	taken int64
	wants int // the size of a first value that did not fit
}

// batchRoom takes room for the values of the batch getBatch is about to
// ask for, for a retrieval off its loop over a Cache that may wait.
func (c *conn) batchRoom() *batchRoom {
	if !c.hand.running || !c.srv.remote {
		return nil
	}
	room, taken := c.srv.mem.grant(c.wants, max(c.srv.cfg.MaxItemSize, batchBytes))
	c.wants = 0
	return &batchRoom{room: room, taken: taken}
}

// full reports whether a value of n bytes, after size bytes of the
// batch's hits, does not fit b: it and the keys after it go in the next
// batch, which takes room for it when it is the batch's first hit.
func (b *batchRoom) full(size, n, hits int) bool {
	if b == nil || size+n <= b.room {
		return false
	}
	if hits == 0 {
		b.wants = n
	}
	return true
}

// endBatchRoom gives back b's room and counts the batch's replies.
func (c *conn) endBatchRoom(b *batchRoom) {
	if b == nil {
		return
	}
	c.srv.mem.giveBack(b.taken)
	c.account()
	if c.wants = b.wants; b.wants > 0 {
		c.srv.mem.rerun.Add(1)
	}
}
