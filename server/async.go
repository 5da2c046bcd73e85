package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"shoal/protocol"
	"shoal/store"
)

// AsyncCache is an optional Cache interface that lets event loops
// (Config.EventLoop) serve a Cache some of whose calls wait on the network,
// such as a cluster router forwarding to peers, without a loop ever
// waiting: a forwarded get completes later, and any other command that
// may wait runs on a goroutine of its own.
//
// Under an event loop, for a connection over an AsyncCache:
//
//   - a single-key get, gets, gat or gats, and an mg, go to GetAsync. It
//     either answers at once (pending false: a key this node serves) or
//     returns pending and calls done later, exactly once, from another
//     goroutine, with what Get would have returned. Meanwhile the
//     connection runs nothing else and reads no more input; its earlier
//     replies may still be written. key and opt stay valid and unchanged
//     until done is called; dst is the connection's value buffer, which
//     the returned (or done's) val may use: val then belongs to the
//     connection. done is made once per connection (no allocation per
//     request) and must not be retained after it is called. GetAsync must
//     not wait on the network, nor call done itself; done may run (on
//     another goroutine) before GetAsync has returned.
//   - a classic storage command (set, add, replace, append, prepend,
//     cas) or an ms (not a replicated one: Y), but not a compare against
//     CAS 0 nor a value that does not Fit, goes to SetAsync with no Inline
//     asked first: SetAsync decides where the key is served once, and
//     answers at once a key served here. A classic delete or an md (not
//     replicated, not a compare against CAS 0) goes to DeleteAsync the
//     same way. Their contract is GetAsync's, with what Set (Delete)
//     would have returned: the connection meanwhile runs nothing else and
//     reads no more input (key and value, which alias its read buffer,
//     and opt stay valid and unchanged until done is called). A binary
//     protocol set goes to SetAsync when its key is not Inline, a binary
//     delete to DeleteAsync.
//   - every other command runs on the loop when Inline says every key it
//     names is served here without waiting on the network (for flush_all,
//     which names none, Inline(nil): whether flushing waits on the
//     network, as a cluster's reaches every member); else on a goroutine of its own, the
//     connection handed off and then back to its loop. A view that changes
//     between Inline and the command may still make the loop wait once, at
//     most a peer timeout.
//   - ctx is the connection's, as for Cache: what waits under it on a
//     goroutine gives up when it ends; a request already sent may still
//     complete later (done is called all the same).
//   - Flush is called by a loop at the end of each wake-up in which
//     GetAsync (SetAsync, DeleteAsync) returned pending: requests they
//     queued may wait for it to be sent, so that the requests of a
//     wake-up share writes.
//
// Every method is called concurrently from several loops.
type AsyncCache interface {
	Inline(key []byte) bool
	GetAsync(ctx context.Context, key []byte, opt *store.GetOptions, dst []byte, done func(store.Item, []byte, store.Result)) (it store.Item, val []byte, res store.Result, pending bool)
	SetAsync(ctx context.Context, key, value []byte, opt *store.SetOptions, done func(store.Result, store.Item, error)) (res store.Result, it store.Item, err error, pending bool)
	DeleteAsync(ctx context.Context, key []byte, opt *store.DeleteOptions, done func(store.Result, store.Item, error)) (res store.Result, it store.Item, err error, pending bool)
	Flush()
}

// handoff is what a connection under an event loop shares with the
// goroutine it lends itself to while a command is away from the loop (a
// pending GetAsync, or a command run on a goroutine), and who holds it
// (state; see owner for the moves). The loop parks the connection and, at
// the end of its wake-up, releases it (away); from then on the goroutine
// that finishes the command owns the connection: it appends the reply and
// either writes it itself (nothing else waits: the connection is idle
// again) or hands the connection back to its loop. A get that completes
// before the release leaves its result here for the loop (a write
// completes the same way).
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
	// ready: the get (write) completed before the release, with this result.
	ready bool
	it    store.Item
	val   []byte
	res   store.Result
	err   error
}

// mayPark reports whether a get, set or delete of this connection goes to
// GetAsync, SetAsync or DeleteAsync (which route the key themselves,
// once): it runs on its loop over an AsyncCache (not on a goroutine it was
// lent to).
func (c *conn) mayPark() bool { return c.async != nil && !c.hand.offload }

// asyncGet starts a get through GetAsync and reports whether it is pending
// (the connection is then parked); if not, it has the result.
func (c *conn) asyncGet(cmd protocol.Command, key []byte, opt *store.GetOptions) (store.Item, []byte, store.Result, bool) {
	it, val, res, pending := c.async.GetAsync(c.ctx, key, opt, c.val[:0], c.doneGet)
	if pending {
		c.park(cmd)
	}
	return it, val, res, pending
}

// asyncSet starts a storage command or ms (cmd) through SetAsync and
// reports whether it is pending (the connection is then parked); if not,
// it has the result. The caller checked mayPark.
func (c *conn) asyncSet(cmd protocol.Command, key, value []byte, opt *store.SetOptions) (store.Result, store.Item, error, bool) {
	res, it, err, pending := c.async.SetAsync(c.ctx, key, value, opt, c.doneWrite)
	if pending {
		c.park(cmd)
	}
	return res, it, err, pending
}

// asyncDelete is asyncSet for a delete or md (cmd).
func (c *conn) asyncDelete(cmd protocol.Command, key []byte, opt *store.DeleteOptions) (store.Result, error, bool) {
	res, _, err, pending := c.async.DeleteAsync(c.ctx, key, opt, c.doneWrite)
	if pending {
		c.park(cmd)
	}
	return res, err, pending
}

// setsAsync reports whether a storage command or ms may go to SetAsync
// when its key is not Inline: what they do before Set (a value that does
// not fit, a cas against CAS 0) stays on the loop.
func (c *conn) setsAsync(op protocol.StoreOp, cas uint64, key, value []byte) bool {
	return c.cache.Fits(len(key), len(value)) && (op != protocol.OpCAS || cas != 0)
}

// park parks the connection with cmd pending in GetAsync, SetAsync or
// DeleteAsync; the loop flushes the cache at the end of its wake-up.
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

// inline reports whether cmd may run on the loop (see AsyncCache): the
// gets that go to GetAsync do, as do commands on keys served here.
func (c *conn) inline(cmd protocol.Command) bool {
	var key []byte
	switch cmd := cmd.(type) {
	case *protocol.Retrieval:
		if len(cmd.Keys) == 1 && !cmd.BadKey {
			return true // GetAsync
		}
		for _, k := range cmd.Keys {
			if !c.async.Inline(k) {
				return false
			}
		}
		return true
	case *protocol.MetaGet:
		if !cmd.HasEpoch {
			return true // GetAsync; with Y (peer port only), a replica read
		}
		key = cmd.Key
	case *protocol.Storage:
		if c.setsAsync(cmd.Op, cmd.CAS, cmd.Key, cmd.Data) {
			return true // SetAsync
		}
		key = cmd.Key
	case *protocol.Delete:
		return true // DeleteAsync
	case *protocol.Arith:
		key = cmd.Key
	case *protocol.Touch:
		key = cmd.Key
	case *protocol.MetaSet:
		if !cmd.HasEpoch && c.setsAsync(cmd.Op, cmd.CAS, cmd.Key, cmd.Data) {
			return true // SetAsync
		}
		key = cmd.Key
	case *protocol.MetaDelete:
		if !cmd.HasEpoch && (!cmd.HasCAS || cmd.CAS != 0) {
			return true // DeleteAsync
		}
		key = cmd.Key
	case *protocol.MetaArith:
		key = cmd.Key
	case *protocol.MetaDebug:
		key = cmd.Key
	case *protocol.Binary:
		return c.binInline(cmd)
	case *protocol.FlushAll:
		return c.async.Inline(nil) // names no key: the cache knows where it goes
	case *protocol.ShardDump:
		return false // streams the shards: its writes wait for the socket
	default:
		return true // stats, version, verbosity, ...: this node only
	}
	return c.async.Inline(key)
}

// getDone is GetAsync's completion (c.doneGet).
func (c *conn) getDone(it store.Item, val []byte, res store.Result) {
	c.complete(it, val, res, nil)
}

// writeDone is SetAsync's and DeleteAsync's completion (c.doneWrite).
func (c *conn) writeDone(res store.Result, it store.Item, err error) {
	c.complete(it, nil, res, err)
}

// complete ends a pending get or write: before the loop released the
// connection, the result waits for it (release); after, this goroutine
// owns the connection, and Shutdown waits until it is done with it.
func (c *conn) complete(it store.Item, val []byte, res store.Result, err error) {
	h := &c.hand
	h.mu.Lock()
	if !h.owner().released() {
		h.it, h.val, h.res, h.err, h.ready = it, val, res, err, true
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	c.finish(it, val, res, err)
	c.comeBack()
	c.srv.wg.Done() // added by release
}

// finish appends the reply of the pending get or write.
func (c *conn) finish(it store.Item, val []byte, res store.Result, err error) {
	cmd := c.hand.cmd
	c.hand.cmd = nil
	switch cmd := cmd.(type) {
	case *protocol.Retrieval:
		c.retrieved(cmd, it, val, res)
	case *protocol.MetaGet:
		c.metaGot(cmd, it, val, res)
	case *protocol.Storage:
		c.stored(cmd, res, err)
	case *protocol.MetaSet:
		c.metaStored(cmd, res, it, err)
	case *protocol.Delete:
		c.deleted(cmd, res, err)
	case *protocol.MetaDelete:
		c.metaDeleted(cmd, res, err)
	case *protocol.Binary:
		c.binFinish(cmd, it, val, res, err)
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
func (c *conn) comeBack() {
	h := &c.hand
	if c.ev.drained && !c.ev.hup && !c.ev.closing && c.r.Buffered() == 0 && c.err == nil && !c.dropped.Load() && c.more.cmd == nil {
		c.flush()
		if !c.pending() && c.err == nil {
			c.idle()
			h.mu.Lock()
			if h.events == 0 && h.owner() == away && !c.dropped.Load() {
				h.to(away, onLoop)
				h.mu.Unlock()
				return
			}
			h.mu.Unlock()
		}
	}
	c.ev.loop.handBack(c)
}
