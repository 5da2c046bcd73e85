package server

import (
	"strconv"

	"shoal/protocol"
	"shoal/store"
)

// Reply lines of the classic protocol.
const (
	replyStored      = "STORED"
	replyNotStored   = "NOT_STORED"
	replyExists      = "EXISTS"
	replyNotFound    = "NOT_FOUND"
	replyDeleted     = "DELETED"
	replyTouched     = "TOUCHED"
	replyOK          = "OK"
	replyEnd         = "END"
	replyTooLarge    = "SERVER_ERROR object too large for cache"
	replyNoMemory    = "SERVER_ERROR out of memory storing object"
	replyBadFormat   = "CLIENT_ERROR bad command line format"
	replyNonNumeric  = "CLIENT_ERROR cannot increment or decrement non-numeric value"
	replyNoFlush     = "CLIENT_ERROR flush_all not allowed"
	replyNoShutdown  = "ERROR: shutdown not enabled"
	replyBadShutdown = "CLIENT_ERROR invalid shutdown mode"
	replyMemlimitLow = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"
	replyNoAdmin     = "CLIENT_ERROR not allowed on this port"
)

// storeModes maps classic storage verbs to store write modes; cas is a set
// with a compare.
var storeModes = [...]store.Mode{
	protocol.OpSet:     store.ModeSet,
	protocol.OpAdd:     store.ModeAdd,
	protocol.OpReplace: store.ModeReplace,
	protocol.OpAppend:  store.ModeAppend,
	protocol.OpPrepend: store.ModePrepend,
	protocol.OpCAS:     store.ModeSet,
}

// exec runs one command and appends its reply to c.out.
func (c *conn) exec(cmd protocol.Command) {
	switch cmd := cmd.(type) {
	case *protocol.Storage:
		c.storage(cmd)
	case *protocol.Retrieval:
		c.retrieval(cmd)
	case *protocol.Delete:
		c.delete(cmd)
	case *protocol.Arith:
		c.arith(cmd)
	case *protocol.Touch:
		c.touch(cmd)
	case *protocol.FlushAll:
		c.flushAll(cmd)
	case *protocol.Maintenance:
		c.maintenance(cmd)
	case *protocol.Stats:
		c.stats(cmd)
	case *protocol.Admin:
		c.admin(cmd)
	case *protocol.Binary:
		c.binary(cmd)
	default:
		c.execMeta(cmd)
	}
}

// serverError answers a write whose owner could not be reached, in
// memcached's form for server-side failures.
func (c *conn) serverError(noreply bool, err error) {
	if c.writeGaveUp() {
		return
	}
	c.reply(noreply, "SERVER_ERROR "+err.Error())
}

// storeReply is the classic reply line for a write result.
func storeReply(r store.Result) string {
	switch r {
	case store.Stored:
		return replyStored
	case store.Exists:
		return replyExists
	case store.NotFound:
		return replyNotFound
	case store.TooLarge:
		return replyTooLarge
	case store.NoMemory:
		return replyNoMemory
	default:
		return replyNotStored
	}
}

func (c *conn) storage(cmd *protocol.Storage) {
	c.ctr.cmdSet.Add(1)
	c.srv.detail.count(cmd.Key, prefixSet, false)
	if !c.srv.items.Fits(len(cmd.Key), len(cmd.Data)) {
		c.ctr.storeTooLarge.Add(1)
		c.refused(cmd.Op, cmd.Key, store.TooLarge)
		c.reply(cmd.NoReply, replyTooLarge)
		return
	}
	if cmd.Op == protocol.OpCAS && cmd.CAS == 0 {
		// No item ever has CAS 0: memcached answers EXISTS, or NOT_FOUND.
		c.casZero(cmd)
		return
	}
	opt := &c.opt.set
	*opt = store.SetOptions{
		Mode:    storeModes[cmd.Op],
		Flags:   cmd.Flags,
		Exptime: absExptime(c.srv.items.Now(), cmd.Exptime),
	}
	if cmd.Op == protocol.OpCAS {
		opt.CAS = cmd.CAS
	}
	if c.watching(streamFetchers | streamMutations) {
		c.peekPrior(cmd.Key)
	}
	if c.setRequest(cmd.Key, cmd.Data, opt); !c.call(cmd) {
		c.stored(cmd, c.req.Res, c.req.Err)
	}
}

// stored appends the reply of a storage command's write and counts it;
// c.opt.set holds its options.
func (c *conn) stored(cmd *protocol.Storage, res store.Result, err error) {
	if err != nil {
		c.serverError(cmd.NoReply, err)
		return
	}
	if c.watching(streamFetchers | streamMutations) {
		c.watchWrite(cmd.Key, storeCmds[cmd.Op], res, c.opt.set.Exptime, len(cmd.Data))
	}
	if cmd.Op == protocol.OpCAS {
		c.countCAS(res)
	}
	if res == store.NoMemory {
		c.ctr.storeNoMemory.Add(1)
	}
	c.reply(cmd.NoReply, storeReply(res))
}

func (c *conn) casZero(cmd *protocol.Storage) {
	res, prior := c.casZeroResult(cmd.Key)
	if c.watching(streamFetchers | streamMutations) {
		c.prior = prior
		c.watchWrite(cmd.Key, "cas", res, absExptime(c.srv.items.Now(), cmd.Exptime), len(cmd.Data))
	}
	c.countCAS(res)
	c.reply(cmd.NoReply, storeReply(res))
}

func (c *conn) countCAS(res store.Result) {
	switch res {
	case store.Stored:
		c.ctr.casHits.Add(1)
	case store.Exists:
		c.ctr.casBadval.Add(1)
	case store.NotFound:
		c.ctr.casMisses.Add(1)
	}
}

func (c *conn) retrieval(cmd *protocol.Retrieval) {
	var opt *store.GetOptions
	if cmd.Op == protocol.OpGat || cmd.Op == protocol.OpGats {
		c.opt.get = store.GetOptions{Touch: true, Exptime: absExptime(c.srv.items.Now(), cmd.Exptime)}
		opt = &c.opt.get
	}
	withCAS := cmd.Op == protocol.OpGets || cmd.Op == protocol.OpGats
	if len(cmd.Keys) == 1 && !cmd.BadKey && !cmd.More && c.mayPark() {
		if c.getRequest(cmd.Keys[0], opt); !c.call(cmd) {
			c.retrieved(cmd, c.req.Item, c.req.Val, c.req.Res)
		}
		return
	}
	c.more = moreKeys{cmd: cmd, opt: opt, withCAS: withCAS, endEach: cmd == &c.gets.cmd}
	if c.srv.remote && len(cmd.Keys) > 1 {
		c.more.batch = c.srv.firstBatch()
	}
	c.getKeys()
}

// retrieved ends a retrieval of one key with its result.
func (c *conn) retrieved(cmd *protocol.Retrieval, it store.Item, val []byte, res store.Result) {
	c.val = val
	if c.gaveUp(res) {
		return
	}
	if c.watching(streamFetchers) {
		c.logGet(cmd.Keys[0], res == store.Hit, it.Size)
	}
	c.countGet(cmd.Op == protocol.OpGat || cmd.Op == protocol.OpGats, res == store.Hit)
	c.srv.detail.count(cmd.Keys[0], prefixGet, res == store.Hit)
	if res == store.Hit {
		c.value(cmd.Keys[0], it, val, cmd.Op == protocol.OpGets || cmd.Op == protocol.OpGats)
	}
	c.endRetrieval(cmd)
}

// endRetrieval appends the END (or the bad key's error) of a retrieval;
// a part of a long get line (More) ends with nothing.
func (c *conn) endRetrieval(cmd *protocol.Retrieval) {
	c.dropLargeVal()
	switch {
	case cmd.BadKey:
		// memcached drops every reply not yet sent before this error.
		c.dropUnflushed()
		c.line(replyBadFormat)
	case !cmd.More:
		c.line(replyEnd)
	}
}

// countGet counts one key of a retrieval; touch is true for gat and gats.
func (c *conn) countGet(touch, hit bool) {
	c.ctr.cmdGet.Add(1)
	if touch {
		c.ctr.cmdTouch.Add(1)
	}
	switch {
	case hit:
		c.ctr.getHits.Add(1)
		if touch {
			c.ctr.touchHits.Add(1)
		}
	default:
		c.ctr.getMisses.Add(1)
		if touch {
			c.ctr.touchMisses.Add(1)
		}
	}
}

// value appends one VALUE reply, writing out a full buffer.
func (c *conn) value(key []byte, it store.Item, val []byte, withCAS bool) {
	if len(val) < flushAt {
		c.out = protocol.AppendValue(c.out, key, it.Flags, val, it.CAS, withCAS)
		if len(c.out) >= flushAt {
			c.flush()
		}
		return
	}
	// A large value goes to the socket straight from the value buffer:
	// only what the socket does not take now is copied, to wait.
	c.out = protocol.AppendValueHeader(c.out, key, it.Flags, len(val), it.CAS, withCAS)
	c.flush()
	val = c.writeValue(val)
	c.out = append(c.out, val...)
	c.out = append(c.out, '\r', '\n')
	c.flush() // taken on: a later bad key must not drop half a value
}

func (c *conn) delete(cmd *protocol.Delete) {
	c.srv.detail.count(cmd.Key, prefixDel, false)
	if c.watching(streamFetchers) {
		c.peekPrior(cmd.Key)
	}
	if c.deleteRequest(cmd.Key, nil); !c.call(cmd) {
		c.deleted(cmd, c.req.Res, c.req.Err)
	}
}

// deleted appends the reply of a delete and counts it.
func (c *conn) deleted(cmd *protocol.Delete, res store.Result, err error) {
	if err != nil {
		c.serverError(cmd.NoReply, err)
		return
	}
	if c.watching(streamFetchers) {
		c.logLookup(cmd.Key, res == store.Deleted || res == store.Exists)
	}
	if res == store.Deleted {
		c.ctr.deleteHits.Add(1)
		c.reply(cmd.NoReply, replyDeleted)
		return
	}
	c.ctr.deleteMisses.Add(1)
	c.reply(cmd.NoReply, replyNotFound)
}

func (c *conn) arith(cmd *protocol.Arith) {
	c.opt.arith = store.ArithOptions{Decr: !cmd.Incr, Delta: cmd.Delta}
	if c.watching(streamFetchers) {
		c.peekPrior(cmd.Key)
	}
	c.request(OpArith, cmd.Key).Arith = &c.opt.arith
	if !c.call(cmd) {
		c.arithDone(cmd, c.req.Res, c.req.N, c.req.Err)
	}
}

// arithDone appends the reply of an incr or decr and counts it.
func (c *conn) arithDone(cmd *protocol.Arith, res store.Result, v uint64, err error) {
	if err != nil {
		c.serverError(cmd.NoReply, err)
		return
	}
	if c.watching(streamFetchers) {
		c.logLookup(cmd.Key, res != store.NotFound)
	}
	hits, misses := &c.ctr.incrHits, &c.ctr.incrMisses
	if !cmd.Incr {
		hits, misses = &c.ctr.decrHits, &c.ctr.decrMisses
	}
	switch res {
	case store.Stored:
		hits.Add(1)
		if !cmd.NoReply {
			c.out = strconv.AppendUint(c.out, v, 10)
			c.out = append(c.out, '\r', '\n')
		}
	case store.NonNumeric:
		c.reply(cmd.NoReply, replyNonNumeric)
	case store.NoMemory:
		c.reply(cmd.NoReply, replyNoMemory)
	default:
		misses.Add(1)
		c.reply(cmd.NoReply, replyNotFound)
	}
}

func (c *conn) touch(cmd *protocol.Touch) {
	c.ctr.cmdTouch.Add(1)
	if c.watching(streamFetchers) {
		c.peekPrior(cmd.Key)
	}
	c.request(OpTouch, cmd.Key).Exptime = absExptime(c.srv.items.Now(), cmd.Exptime)
	if !c.call(cmd) {
		c.touchDone(cmd, c.req.Res, c.req.Err)
	}
}

// touchDone appends the reply of a touch and counts it.
func (c *conn) touchDone(cmd *protocol.Touch, res store.Result, err error) {
	if err != nil {
		c.serverError(cmd.NoReply, err)
		return
	}
	if c.watching(streamFetchers) {
		c.logLookup(cmd.Key, res == store.Touched)
	}
	if res == store.Touched {
		c.ctr.touchHits.Add(1)
		c.reply(cmd.NoReply, replyTouched)
		return
	}
	c.ctr.touchMisses.Add(1)
	c.reply(cmd.NoReply, replyNotFound)
}

func (c *conn) flushAll(cmd *protocol.FlushAll) {
	if c.srv.cfg.DisableFlush {
		c.line(replyNoFlush)
		return
	}
	c.ctr.cmdFlush.Add(1)
	delay := cmd.Delay
	if now := c.srv.items.Now(); delay > maxRelative {
		delay = max(delay-now, 0)
	}
	c.cache.FlushAll(c.ctx, max(delay, 0))
	c.reply(cmd.NoReply, replyOK)
}

func (c *conn) admin(cmd *protocol.Admin) {
	if c.srv.cfg.NoAdmin && (cmd.Op == protocol.OpVerbosity || cmd.Op == protocol.OpShutdown || cmd.Op == protocol.OpCacheMemlimit) {
		c.line(replyNoAdmin)
		return
	}
	switch cmd.Op {
	case protocol.OpVersion:
		c.line("VERSION " + Version)
	case protocol.OpVerbosity:
		c.srv.verbosity.Store(int64(cmd.Arg))
		c.reply(cmd.NoReply, replyOK)
	case protocol.OpQuit:
		c.quit = true
	case protocol.OpShutdown:
		if !c.srv.cfg.EnableShutdown {
			c.line(replyNoShutdown)
			return
		}
		if cmd.BadMode {
			c.line(replyBadShutdown)
			return
		}
		// memcached's graceful mode (SIGUSR1) differs from the plain one
		// only in saving the warm-restart file (-e) on the way out.
		c.quit = true
		c.srv.requestShutdown(cmd.Graceful)
	case protocol.OpCacheMemlimit:
		if cmd.Arg < 8 {
			c.reply(cmd.NoReply, replyMemlimitLow)
			return
		}
		if err := c.srv.items.SetMemoryLimit(int64(cmd.Arg) << 20); err != nil {
			c.reply(cmd.NoReply, "SERVER_ERROR "+err.Error())
			return
		}
		c.reply(cmd.NoReply, replyOK)
	case protocol.OpMetaNoop:
		c.line("MN")
	case protocol.OpRefreshCerts:
		switch {
		case c.srv.cfg.TLS == nil:
			c.line("Error TLS not enabled") // memcached's line, noreply or not
		default:
			if err := c.srv.cfg.TLS.Refresh(); err != nil {
				c.line(err.Error()) // memcached's words, noreply or not
				return
			}
			c.reply(cmd.NoReply, replyOK)
		}
	}
}
