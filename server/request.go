package server

import (
	"context"
	"errors"

	"shoal/protocol"
	"shoal/store"
)

// Op is what a Request does to its key.
type Op uint8

const (
	OpGet    Op = iota // Key, Get, Dst → Item, Val, Res: a read (touch, gat, vivify by Get's options)
	OpSet              // Key, Value, Set → Res, Item, Err
	OpDelete           // Key, Del → Res, Item, Err
	OpArith            // Key, Arith → Res, N (the new value), Item, Err: incr/decr
	OpTouch            // Key, Exptime → Res, Item, Err
)

// Request is one key's operation on its way through a Cache (Start),
// which may complete it later: the command, and then its outcome. A
// connection owns one Request, reused for each of its commands (no
// allocation per request); only one is in flight per connection.
//
// Key, Value, the options and Dst are the connection's (Value and Key
// alias its read buffer): they stay valid and unchanged until the request
// completes, and the Cache must not retain them after. Dst is the
// connection's value buffer, which Val may use: Val then belongs to the
// connection. The inputs of other Ops may still hold an earlier command's:
// the Cache reads only those of req.Op (and Replica, Origin).
type Request struct {
	Op    Op
	Key   []byte
	Value []byte               // OpSet
	Get   *store.GetOptions    // OpGet; may be nil
	Set   *store.SetOptions    // OpSet
	Del   *store.DeleteOptions // OpDelete; may be nil
	Arith *store.ArithOptions  // OpArith
	// Exptime is an OpTouch's new expiry: absolute unix seconds, 0 for
	// never (as every exptime the Cache sees).
	Exptime int64
	Dst     []byte // OpGet
	// Room, for an OpGet, is the most bytes of value the connection can
	// take now (0: any). A Cache that forwards the get asks the owner
	// for no more (peer.GetOptions.Room): a larger value is not sent, and
	// the request completes with Wants set to its size. The connection
	// then waits until the replies waiting for sockets leave room for it
	// and starts the request again (conn.roomFor). A Cache that holds
	// the value anyway ignores Room.
	Room int

	// Replica marks a peer's replicated write (an ms or md with Y, from
	// Origin) or replica-level read (an mg with Y: this node's copy only,
	// as a peer settling a key during its warm-up needs it); only a
	// cluster node's peer port reads those (Config.PeerExtensions). A
	// Cache that keeps replicas orders replicated writes per shard and
	// refuses those from a stale ring with ErrStaleOrigin (answered
	// protocol.ReplyStaleEpoch; any other error "SERVER_ERROR <text>"), and
	// a replica read's miss may carry in Item.CAS the version of a delete
	// of the key it remembers (answered "EN c<version>"). Any other Cache
	// serves them as the plain request. Writes of one shard may arrive out
	// of order (several peers, several connections per peer), which is
	// what Origin.Seq is for.
	Replica bool
	Origin  Origin

	// The outcome, every field of which the Cache sets for its Op (the
	// connection reuses the Request without clearing it): Item and Res
	// always, Val for a get, N for an arith, Err for anything but a get
	// (a read never fails: an unreachable owner is a miss).
	Item store.Item
	Val  []byte
	N    uint64
	Res  store.Result
	Err  error
	// Wants, for an OpGet, is the size of a value not taken for lack of
	// Room (the rest of the outcome is a miss's, and is not answered);
	// 0 otherwise.
	Wants int
	// Batched, set by a completer before it calls done, says that the
	// goroutine calling done calls Config.Batch's Send once it has
	// completed what it had (a peer client's reader, at the end of the
	// replies of one read): the connection's reply may wait in the Batch
	// until then, to go out with the others. The server clears it.
	Batched bool
}

// release makes req forget its command and outcome, whose slices alias
// the connection's buffers: an idle connection must not keep a large
// read buffer alive through it.
func (req *Request) release() { *req = Request{} }

// dropLargeVal lets go of a value buffer grown past flushAt, and of the
// Request's references to it, once the value is answered: a connection
// keeps no large value while it waits (the Request held it until the
// connection went idle: a thousand connections that read nothing kept a
// megabyte each, outside the connections' memory limit).
func (c *conn) dropLargeVal() {
	if cap(c.val) > flushAt {
		c.val = nil
	}
	if cap(c.req.Dst) > flushAt || cap(c.req.Val) > flushAt {
		c.req.Dst, c.req.Val = nil, nil
	}
}

// request makes the connection's Request an op on key, and returns it
// for the rest of the command, which sets the op's other inputs. It does
// not clear the rest: Start reads only the inputs of req.Op and sets
// every outcome field of it, and an idle connection's Request is cleared
// (release). Clearing it all here costs a set a tenth of its time in the
// server (BenchmarkExec).
func (c *conn) request(op Op, key []byte) *Request {
	q := c.req
	q.Op, q.Key, q.Replica = op, key, false
	return q
}

// replicaRequest marks c.req as a peer's replicated write or replica
// read, when m carries the sender's epoch (Y).
func (c *conn) replicaRequest(m *protocol.MetaOptions) {
	if m.HasEpoch {
		c.req.Replica, c.req.Origin = true, Origin{Epoch: m.Epoch, Seq: m.Seq}
	}
}

// getRequest makes c.req a get of key into the connection's value buffer.
func (c *conn) getRequest(key []byte, opt *store.GetOptions) {
	q := c.request(OpGet, key)
	q.Get, q.Dst = opt, c.val[:0]
}

// setRequest makes c.req a set.
func (c *conn) setRequest(key, value []byte, opt *store.SetOptions) {
	q := c.request(OpSet, key)
	q.Value, q.Set = value, opt
}

// deleteRequest makes c.req a delete.
func (c *conn) deleteRequest(key []byte, opt *store.DeleteOptions) {
	c.request(OpDelete, key).Del = opt
}

// get reads key through the cache, waiting for the outcome (do).
func (c *conn) get(key []byte, opt *store.GetOptions) (store.Item, []byte, store.Result) {
	c.getRequest(key, opt)
	c.do(c.ctx)
	return c.req.Item, c.req.Val, c.req.Res
}

// deleteAnyway deletes key whatever the client does next, as memcached
// does after a refused set: under a context that outlives the
// connection's.
func (c *conn) deleteAnyway(key []byte) (store.Result, store.Item) {
	c.deleteRequest(key, nil)
	c.do(context.WithoutCancel(c.ctx))
	return c.req.Res, c.req.Item
}

// errGaveUp ends a connection whose get's miss, or write's error, may be
// the cache giving up (gaveUp, writeGaveUp).
var errGaveUp = errors.New("server: a command ended with the connection's context: not answered")

// gaveUp reports whether a get's miss (res) may be the cache giving up on
// the request rather than its answer: the connection's context ended
// (Shutdown, DropConns) before the outcome came, and a Cache that waits
// on the network gives up then (see Cache), answering a miss. Such a miss
// is not answered: the connection ends without writing anything more
// (c.err), as memcached's do at shutdown, so that its client retries
// elsewhere instead of reading a miss for a key that exists.
func (c *conn) gaveUp(res store.Result) bool {
	if res == store.Hit || c.ctx.Err() == nil {
		return false
	}
	if c.err == nil {
		c.err = errGaveUp
	}
	return true
}

// writeGaveUp reports whether a write's error (or any the Cache returned)
// may be the cache giving up on the request rather than its outcome: the
// connection's context ended before the outcome came (Shutdown,
// DropConns). As gaveUp does for a get's miss, the error is not answered
// and the connection ends without writing or running anything more: a
// pending forwarded set answered "SERVER_ERROR cluster: no owner
// reachable" at shutdown, and the get the client had sent after it ran
// (TestAsyncClientGone, at random).
func (c *conn) writeGaveUp() bool {
	if c.ctx.Err() == nil {
		return false
	}
	if c.err == nil {
		c.err = errGaveUp
	}
	return true
}
