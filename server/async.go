package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"shoal/protocol"
)

// Under an event loop, over a Cache that may wait on the network (any
// but a Local: Server.remote), no loop ever waits: a request Start leaves
// pending parks its connection, and any other command that may wait runs
// on a goroutine of its own. For a connection there:
//
//   - a single-key get, gets, gat or gats, and an mg, go to Start as an
//     OpGet Request; a classic storage command (set, add, replace, append,
//     prepend, cas) or an ms (not a replicated one: Y), but not a compare
//     against CAS 0 nor a value that does not Fit, as an OpSet; a classic
//     delete or an md (not replicated, not a compare against CAS 0) as an
//     OpDelete; incr, decr and ma as an OpArith, touch as an OpTouch. A
//     binary get goes as an OpGet, a binary set as an OpSet, a binary
//     delete as an OpDelete, an increment or decrement as an OpArith. No
//     Inline is asked first: Start decides where the key is served, once.
//     A pending one parks the connection: it runs nothing else and reads
//     no more input until done (its earlier replies may still be
//     written). done is made once per connection (no allocation per
//     request).
//   - every other command runs on the loop when the Cache's Inline says
//     every key it names is served here without waiting on the network
//     (for flush_all, which names none, Inline(nil)); else on a goroutine
//     of its own, the connection handed off and then back to its loop
//     (Start there gets no done: it completes before returning). A view
//     that changes between Inline and the command may still make the
//     loop wait once, at most a peer timeout.
//   - ctx is the connection's, as for Cache: what waits under it on a
//     goroutine gives up when it ends; a request already sent may still
//     complete later (done is called all the same).
//   - the loop calls the Cache's Flush at the end of each wake-up in which
//     Start returned pending.

// handoff is what a connection under an event loop shares with the
// goroutine it lends itself to while a command is away from the loop (a
// pending Start, or a command run on a goroutine), and who holds it
// (state; see owner for the moves). The loop parks the connection and, at
// the end of its wake-up, releases it (away); from then on the goroutine
// that finishes the command owns the connection: it appends the reply and
// either writes it itself (nothing else waits: the connection is idle
// again) or hands the connection back to its loop. A request that
// completes before the release leaves its outcome in conn.req for the
// loop, and says so here (ready).
type handoff struct {
	// Set by the loop before the command leaves it.
	cmd     protocol.Command // the command away
	perr    *protocol.Error  // or the protocol error to answer (a too-large set's delete)
	offload bool             // cmd (or perr) runs on a goroutine; else it is a pending get
	// running: this is the goroutine an offloaded command runs on; its
	// writes wait for the socket (waitWritable).
	running bool
	start   time.Time // non-zero: a latency sample of cmd

	// state is the connection's owner; it changes by to, under mu but
	// for onLoop→parked, and may be read without mu.
	state atomic.Uint32
	// mu guards the fields below.
	mu sync.Mutex
	// events: the readiness events that arrived while it was released.
	events uint32
	// ready: the request (conn.req) completed before the release.
	ready bool
}

// mayPark reports whether a pending Start may park this connection: it
// runs on its loop over a Cache that may wait (not on a goroutine it was
// lent to).
func (c *conn) mayPark() bool { return c.parks && !c.hand.offload }

// call runs c.req (for cmd) through the cache's Start. Where the
// connection may park (mayPark), a request left pending parks it, and
// call reports true: its reply is appended when it completes (finish).
// Anywhere else Start completes it before returning (do), and call
// reports false: the outcome is in c.req.
//
// A get that may park takes room for its value first (roomFor); one
// whose value did not fit it waits for room and runs again (rerun), and
// call reports true: nothing is answered now.
func (c *conn) call(cmd protocol.Command) bool {
	if c.mayPark() {
		c.roomFor()
		if !c.cache.Start(c.ctx, c.req, c.doneReq) {
			c.endRoom()
			return c.rerun(cmd)
		}
		c.park(cmd)
		return true
	}
	c.do(c.ctx)
	return false
}

// do runs c.req through the cache's Start under ctx with no completion:
// Start completes it before returning, waiting as long as it must (see
// Cache), even where the connection may park (for a command that names
// several keys). ctx is the connection's but for a write that must
// outlive it. The request never outlives the call: nothing else can be
// using the connection's buffers and options once do returns.
func (c *conn) do(ctx context.Context) {
	if c.cache.Start(ctx, c.req, nil) {
		panic("server: Cache.Start left a request pending without a completion")
	}
}

// setsAsync reports whether a storage command or ms may go to Start
// when its key is not Inline: what they do before Set (a value that does
// not fit, a cas against CAS 0) stays on the loop.
func (c *conn) setsAsync(op protocol.StoreOp, cas uint64, key, value []byte) bool {
	return c.srv.items.Fits(len(key), len(value)) && (op != protocol.OpCAS || cas != 0)
}

// park parks the connection with cmd pending in Start; the loop flushes
// the cache at the end of its wake-up.
func (c *conn) park(cmd protocol.Command) {
	c.hand.to(onLoop, parked)
	c.hand.cmd, c.hand.offload = cmd, false
	c.ev.loop.queued = true
}

// offload parks the connection for cmd (or pe) to run on a goroutine once
// the loop releases it.
func (c *conn) offload(cmd protocol.Command, pe *protocol.Error) {
	c.hand.to(onLoop, parked)
	c.hand.cmd, c.hand.perr, c.hand.offload = cmd, pe, true
}

// inline reports whether cmd may run on the loop (see above): the
// commands of one key that go to Start do, as do commands on keys served
// here.
func (c *conn) inline(cmd protocol.Command) bool {
	var key []byte
	switch cmd := cmd.(type) {
	case *protocol.Retrieval:
		if len(cmd.Keys) == 1 && !cmd.BadKey {
			return true // Start
		}
		for _, k := range cmd.Keys {
			if !c.cache.Inline(k) {
				return false
			}
		}
		return true
	case *protocol.MetaGet:
		if !cmd.HasEpoch {
			return true // Start; with Y (peer port only), a replica read
		}
		key = cmd.Key
	case *protocol.Storage:
		if c.setsAsync(cmd.Op, cmd.CAS, cmd.Key, cmd.Data) {
			return true // Start
		}
		key = cmd.Key
	case *protocol.Delete, *protocol.Arith, *protocol.Touch, *protocol.MetaArith:
		return true // Start
	case *protocol.MetaSet:
		if !cmd.HasEpoch && c.setsAsync(cmd.Op, cmd.CAS, cmd.Key, cmd.Data) {
			return true // Start
		}
		key = cmd.Key
	case *protocol.MetaDelete:
		if !cmd.HasEpoch && (!cmd.HasCAS || cmd.CAS != 0) {
			return true // Start
		}
		key = cmd.Key
	case *protocol.MetaDebug:
		key = cmd.Key
	case *protocol.Binary:
		return c.binInline(cmd)
	case *protocol.FlushAll:
		return c.cache.Inline(nil) // names no key: the cache knows where it goes
	case *protocol.ShardDump:
		return false // streams the shards: its writes wait for the socket
	default:
		return true // stats, version, verbosity, ...: this node only
	}
	return c.cache.Inline(key)
}

// done is Start's completion for a parked connection (c.doneReq): before
// the loop released the connection, the outcome waits in c.req for it
// (release); after, this goroutine owns the connection, and Shutdown
// waits until it is done with it.
//
// A request marked Batched leaves its reply to the server's Batch when
// nothing else waits on the connection: the Batch's Send writes it and
// goes on as comeBack does.
func (c *conn) done(req *Request) {
	batched := req.Batched
	req.Batched = false
	h := &c.hand
	h.mu.Lock()
	if !h.owner().released() {
		h.ready = true
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	c.finish()
	if batched && c.quiet() && c.srv.cfg.Batch.hold(c) {
		return // comeBack's end and the wg's Done come with the Batch's Send
	}
	c.comeBack()
	c.srv.wg.Done() // added by release
}

// finish appends the reply of the request completed in c.req.
func (c *conn) finish() {
	cmd, q := c.hand.cmd, c.req
	c.hand.cmd = nil
	if c.endRoom(); c.rerun(cmd) {
		return
	}
	switch cmd := cmd.(type) {
	case *protocol.Retrieval:
		c.retrieved(cmd, q.Item, q.Val, q.Res)
	case *protocol.MetaGet:
		c.metaGot(cmd, q.Item, q.Val, q.Res)
	case *protocol.Storage:
		c.stored(cmd, q.Res, q.Err)
	case *protocol.MetaSet:
		c.metaStored(cmd, q.Res, q.Item, q.Err)
	case *protocol.Delete:
		c.deleted(cmd, q.Res, q.Err)
	case *protocol.MetaDelete:
		c.metaDeleted(cmd, q.Res, q.Err)
	case *protocol.Arith:
		c.arithDone(cmd, q.Res, q.N, q.Err)
	case *protocol.Touch:
		c.touchDone(cmd, q.Res, q.Err)
	case *protocol.MetaArith:
		c.metaArithDone(cmd, c.srv.items.Now(), q.Res, q.N, q.Item, q.Err)
	case *protocol.Binary:
		c.binFinish(cmd, q)
	}
	c.observeAway(cmd)
}

// observeAway records the latency sample of a command that left the loop.
func (c *conn) observeAway(cmd protocol.Command) {
	if !c.hand.start.IsZero() {
		c.srv.latency[family(cmd)].observe(time.Since(c.hand.start))
		c.hand.start = time.Time{}
	}
}

// runAway runs an offloaded command on the goroutine the loop started for
// it, then brings the connection back.
func (c *conn) runAway() {
	c.hand.running = true
	if pe := c.hand.perr; pe != nil {
		c.protocolError(pe)
	} else {
		c.run(c.hand.cmd)
	}
	c.hand.cmd, c.hand.perr, c.hand.offload, c.hand.running = nil, nil, false, false
	c.comeBack()
}

// comeBack ends a command away from the loop, on the goroutine that owns
// the connection: when nothing else waits (no input buffered or arrived,
// all replies written), the connection is idle again; otherwise its loop
// takes it back.
//
// Handing every connection back, to send its reply with the loop's
// wake-up (sendAll), cost more than it saved: a peer batch's completions
// then cost a wake of the loop, and at a fixed 20,000 requests/s over
// three nodes the batches are small (bench/cluster.sh, spread: 16,051-
// 16,835 ops per CPU-second against 18,975-19,011 sending here).
func (c *conn) comeBack() {
	if c.quiet() {
		c.flush()
		if c.idleAgain() {
			return
		}
	}
	c.ev.loop.handBack(c)
}

// quiet reports whether nothing but its replies waits on c, away: no
// input buffered or arrived, no command left to run, no error.
func (c *conn) quiet() bool {
	return c.ev.drained && !c.ev.hup && !c.ev.closing && c.r.Buffered() == 0 && c.err == nil && !c.dropped.Load() && c.more.cmd == nil && c.ev.memCmd == nil
}

// idleAgain makes c, away and quiet, idle on its loop once its replies are
// all written, and reports whether it did; else its loop must take it
// back (handBack).
func (c *conn) idleAgain() bool {
	if c.pending() || c.err != nil {
		return false
	}
	c.idle()
	h := &c.hand
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.events == 0 && h.owner() == away && !c.dropped.Load() {
		h.to(away, onLoop)
		return true
	}
	return false
}
