package server

import (
	"bytes"
	"encoding/binary"

	"shoal/protocol"
	"shoal/store"
)

// The binary protocol runs the same Cache calls as the text one
// (classic.go); only the replies differ. As in memcached, a quiet
// opcode (GETQ, SETQ, ...) answers nothing on success nor, for the gets,
// on a miss, but does answer its errors. Replies are written when no
// complete request is buffered, as for text.

// binStoreModes maps the write opcodes to store modes.
var binStoreModes = [...]store.Mode{
	protocol.BinSet:     store.ModeSet,
	protocol.BinAdd:     store.ModeAdd,
	protocol.BinReplace: store.ModeReplace,
	protocol.BinAppend:  store.ModeAppend,
	protocol.BinPrepend: store.ModePrepend,
}

// binary runs one binary request and appends its reply to c.out.
func (c *conn) binary(b *protocol.Binary) {
	// In memcached's order (dispatch_bin_command): the lengths, then
	// authentication, then the opcode's own checks. Each closes.
	switch {
	case b.Malformed:
		c.binError(b, protocol.StatusUnknown)
		c.quit = true
		return
	case c.srv.cfg.SASL != nil && !c.saslAuthed && !saslFree(b.Op):
		c.binError(b, protocol.StatusAuthError)
		c.quit = true
		return
	case b.Invalid:
		c.binError(b, protocol.StatusInvalid)
		c.quit = true
		return
	}
	switch op := b.Base(); op {
	case protocol.BinGet, protocol.BinGetK, protocol.BinGAT, protocol.BinGATK, protocol.BinTouch:
		c.binGet(b, op)
	case protocol.BinSet, protocol.BinAdd, protocol.BinReplace, protocol.BinAppend, protocol.BinPrepend:
		c.binStore(b, op)
	case protocol.BinDelete:
		c.binDelete(b)
	case protocol.BinIncrement, protocol.BinDecrement:
		c.binArith(b, op == protocol.BinIncrement)
	case protocol.BinQuit:
		c.binOK(b)
		c.quit = true
	case protocol.BinFlush:
		c.binFlush(b)
	case protocol.BinNoop:
		c.binOK(b)
	case protocol.BinVersion:
		c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusOK, b.Opaque, 0, nil, nil, []byte(Version))
	case protocol.BinStat:
		c.binStats(b)
	case protocol.BinSASLList, protocol.BinSASLAuth, protocol.BinSASLStep:
		c.binSASL(b)
	default:
		// VERBOSITY too: memcached 1.6.18 answers it "Unknown command".
		c.binError(b, protocol.StatusUnknown)
	}
}

// binOK appends an empty success reply unless the opcode is quiet.
func (c *conn) binOK(b *protocol.Binary) {
	if !b.Quiet() {
		c.out = protocol.AppendBinaryHeader(c.out, b.Op, protocol.StatusOK, 0, 0, 0, b.Opaque, 0)
	}
}

// binError appends an error reply; quiet opcodes answer errors too.
func (c *conn) binError(b *protocol.Binary, s protocol.BinaryStatus) {
	c.out = protocol.AppendBinaryError(c.out, b.Op, s, b.Opaque)
}

// binServerError answers a write whose owner could not be reached.
func (c *conn) binServerError(b *protocol.Binary, err error) {
	if c.writeGaveUp() {
		return
	}
	msg := err.Error()
	c.out = protocol.AppendBinaryHeader(c.out, b.Op, protocol.StatusTempFail, 0, 0, len(msg), b.Opaque, 0)
	c.out = append(c.out, msg...)
}

// binGet serves GET, GETK, GAT, GATK and TOUCH, and their quiet forms.
func (c *conn) binGet(b *protocol.Binary, op protocol.BinaryOp) {
	touch := op == protocol.BinGAT || op == protocol.BinGATK || op == protocol.BinTouch
	c.opt.get = store.GetOptions{}
	if touch {
		c.opt.get = store.GetOptions{Touch: true, Exptime: absExptime(c.srv.items.Now(), b.Exptime())}
	}
	if c.getRequest(b.Key, &c.opt.get); !c.call(b) {
		c.binGot(b, c.req.Item, c.req.Val, c.req.Res)
	}
}

// binGot appends the reply of a get, GAT or TOUCH and counts it.
func (c *conn) binGot(b *protocol.Binary, it store.Item, val []byte, res store.Result) {
	if c.gaveUp(res) {
		return
	}
	op := b.Base()
	touch := op == protocol.BinGAT || op == protocol.BinGATK || op == protocol.BinTouch
	c.val = val
	hit := res == store.Hit
	if op == protocol.BinTouch {
		c.ctr.cmdTouch.Add(1)
		if hit {
			c.ctr.touchHits.Add(1)
		} else {
			c.ctr.touchMisses.Add(1)
		}
	} else {
		c.countGet(touch, hit)
	}
	switch {
	case !hit && b.Quiet():
	case !hit && b.WithKey():
		c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusNotFound, b.Opaque, 0, nil, b.Key, nil)
	case !hit:
		c.binError(b, protocol.StatusNotFound)
	default:
		var flags [4]byte
		binary.BigEndian.PutUint32(flags[:], it.Flags)
		var key []byte
		if b.WithKey() {
			key = b.Key
		}
		if op == protocol.BinTouch {
			val = nil
		}
		c.binValue(b, it.CAS, flags[:], key, val)
	}
	c.dropLargeVal()
}

// binValue appends a hit's reply; a large value goes to the socket from
// the value buffer, as for text (value).
func (c *conn) binValue(b *protocol.Binary, cas uint64, extras, key, val []byte) {
	c.out = protocol.AppendBinaryHeader(c.out, b.Op, protocol.StatusOK, len(key), len(extras), len(extras)+len(key)+len(val), b.Opaque, cas)
	c.out = append(c.out, extras...)
	c.out = append(c.out, key...)
	if len(val) < flushAt {
		c.out = append(c.out, val...)
		if len(c.out) >= flushAt {
			c.flush()
		}
		return
	}
	c.flush()
	val = c.writeValue(val)
	c.out = append(c.out, val...)
	c.flush()
}

// binStore serves SET, ADD, REPLACE, APPEND, PREPEND and their quiet forms.
func (c *conn) binStore(b *protocol.Binary, op protocol.BinaryOp) {
	c.ctr.cmdSet.Add(1)
	if b.TooLarge || b.NoMemory || !c.srv.items.Fits(len(b.Key), len(b.Value)) {
		status := protocol.StatusTooLarge
		if b.NoMemory {
			status = protocol.StatusNoMemory
			c.ctr.storeNoMemory.Add(1)
		} else {
			c.ctr.storeTooLarge.Add(1)
		}
		if op == protocol.BinSet {
			// As memcached: a failed set leaves no stale value behind.
			c.deleteAnyway(b.Key)
		}
		c.binError(b, status)
		return
	}
	opt := &c.opt.set
	*opt = store.SetOptions{Mode: binStoreModes[op], CAS: b.CAS}
	if op != protocol.BinAppend && op != protocol.BinPrepend {
		opt.Flags = b.Flags()
		opt.Exptime = absExptime(c.srv.items.Now(), b.Exptime())
		if b.CAS != 0 {
			opt.Mode = store.ModeSet // memcached: any write with a CAS is a cas
		}
	}
	if c.setRequest(b.Key, b.Value, opt); !c.call(b) {
		c.binStored(b, c.req.Res, c.req.Item, c.req.Err)
	}
}

// binStored appends the reply of a write and counts it.
func (c *conn) binStored(b *protocol.Binary, res store.Result, it store.Item, err error) {
	op := b.Base()
	if err != nil {
		c.binServerError(b, err)
		return
	}
	if b.CAS != 0 {
		c.countCAS(res)
	}
	switch res {
	case store.Stored:
		if !b.Quiet() {
			c.out = protocol.AppendBinaryHeader(c.out, b.Op, protocol.StatusOK, 0, 0, 0, b.Opaque, it.CAS)
		}
	case store.Exists:
		c.binError(b, protocol.StatusExists)
	case store.NotFound:
		c.binError(b, protocol.StatusNotFound)
	case store.TooLarge:
		c.ctr.storeTooLarge.Add(1)
		c.binError(b, protocol.StatusTooLarge)
	case store.NoMemory:
		c.ctr.storeNoMemory.Add(1)
		c.binError(b, protocol.StatusNoMemory)
	default: // NotStored
		switch op {
		case protocol.BinAdd:
			c.binError(b, protocol.StatusExists)
		case protocol.BinReplace:
			c.binError(b, protocol.StatusNotFound)
		default:
			c.binError(b, protocol.StatusNotStored)
		}
	}
}

func (c *conn) binDelete(b *protocol.Binary) {
	c.opt.del = store.DeleteOptions{CAS: b.CAS}
	if c.deleteRequest(b.Key, &c.opt.del); !c.call(b) {
		c.binDeleted(b, c.req.Res, c.req.Err)
	}
}

// binDeleted appends the reply of a delete and counts it.
func (c *conn) binDeleted(b *protocol.Binary, res store.Result, err error) {
	if err != nil {
		c.binServerError(b, err)
		return
	}
	switch res {
	case store.Deleted:
		c.ctr.deleteHits.Add(1)
		c.binOK(b)
	case store.Exists:
		c.binError(b, protocol.StatusExists)
	default:
		c.ctr.deleteMisses.Add(1)
		c.binError(b, protocol.StatusNotFound)
	}
}

func (c *conn) binArith(b *protocol.Binary, incr bool) {
	delta, initial, exptime := b.Arith()
	c.opt.arith = store.ArithOptions{Decr: !incr, Delta: delta, CAS: b.CAS}
	if exptime != 0xffffffff {
		// A miss creates the item holding the initial value.
		c.opt.arith.Vivify = true
		c.opt.arith.Initial = initial
		c.opt.arith.VivifyExptime = absExptime(c.srv.items.Now(), int64(exptime))
	}
	c.request(OpArith, b.Key).Arith = &c.opt.arith
	if !c.call(b) {
		c.binArithDone(b, c.req)
	}
}

// binArithDone appends the reply of an increment or decrement, with its
// outcome q, and counts it.
func (c *conn) binArithDone(b *protocol.Binary, q *Request) {
	res, v, it, err := q.Res, q.N, q.Item, q.Err
	if err != nil {
		c.binServerError(b, err)
		return
	}
	hits, misses := &c.ctr.incrHits, &c.ctr.incrMisses
	if b.Base() == protocol.BinDecrement {
		hits, misses = &c.ctr.decrHits, &c.ctr.decrMisses
	}
	switch res {
	case store.Stored:
		if it.Created {
			misses.Add(1)
		} else {
			hits.Add(1)
		}
		if !b.Quiet() {
			var body [8]byte
			binary.BigEndian.PutUint64(body[:], v)
			c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusOK, b.Opaque, it.CAS, nil, nil, body[:])
		}
	case store.NonNumeric:
		c.binError(b, protocol.StatusNonNumeric)
	case store.Exists:
		c.binError(b, protocol.StatusExists)
	case store.NoMemory:
		c.binError(b, protocol.StatusNoMemory)
	default:
		misses.Add(1)
		c.binError(b, protocol.StatusNotFound)
	}
}

func (c *conn) binFlush(b *protocol.Binary) {
	if c.srv.cfg.DisableFlush {
		c.binError(b, protocol.StatusAuthError)
		return
	}
	c.ctr.cmdFlush.Add(1)
	var delay int64
	if len(b.Extras) == 4 {
		delay = b.Exptime()
	}
	if now := c.srv.items.Now(); delay > maxRelative {
		delay = max(delay-now, 0)
	}
	c.cache.FlushAll(c.ctx, max(delay, 0))
	c.binOK(b)
}

// binStats answers STAT: one reply per statistic (key = name, value =
// value), then an empty one; the statistics are the text command's. The
// group (the key) is matched as memcached's process_bin_stat does: by
// prefix for reset, settings and detail, exactly for the others, and
// "conns" is text only.
func (c *conn) binStats(b *protocol.Binary) {
	key := b.Key
	group := key
	switch {
	case bytes.HasPrefix(key, []byte("reset")):
		group = []byte("reset")
	case bytes.HasPrefix(key, []byte("settings")):
		group = []byte("settings")
	case bytes.HasPrefix(key, []byte("detail")):
		c.binStatsDetail(b, key[len("detail"):])
		return
	case string(key) == "conns":
		c.binError(b, protocol.StatusNotFound)
		return
	}
	text := c.textStats(group)
	if bytes.Equal(text, []byte("RESET\r\n")) {
		c.binOK(b)
		return
	}
	if !bytes.HasSuffix(text, []byte("END\r\n")) {
		c.binError(b, protocol.StatusNotFound)
		return
	}
	for len(text) > 0 {
		i := bytes.Index(text, []byte("\r\n"))
		line := text[:i]
		text = text[i+2:]
		name, ok := bytes.CutPrefix(line, []byte("STAT "))
		if !ok {
			continue
		}
		name, val, _ := bytes.Cut(name, []byte(" "))
		c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusOK, b.Opaque, 0, nil, name, val)
	}
	c.out = protocol.AppendBinaryHeader(c.out, b.Op, protocol.StatusOK, 0, 0, 0, b.Opaque, 0)
}

// textStats runs the text stats command with args and returns its reply.
func (c *conn) textStats(args ...[]byte) []byte {
	mark := len(c.out)
	st := &protocol.Stats{}
	if len(args) > 0 && len(args[0]) > 0 {
		st.Arg, st.Args = args[0], args
	}
	c.stats(st)
	text := bytes.Clone(c.out[mark:])
	c.out = c.out[:mark]
	return text
}

// binStatsDetail answers STAT "detail on", "detail off" and "detail
// dump" (sub is what follows "detail"), as memcached: on and off answer
// an empty success, dump one packet with key "detailed" and the text
// dump as its value.
func (c *conn) binStatsDetail(b *protocol.Binary, sub []byte) {
	var mode []byte
	switch {
	case bytes.HasPrefix(sub, []byte(" dump")):
		mode = []byte("dump")
	case bytes.HasPrefix(sub, []byte(" on")):
		mode = []byte("on")
	case bytes.HasPrefix(sub, []byte(" off")):
		mode = []byte("off")
	default:
		c.binError(b, protocol.StatusNotFound)
		return
	}
	text := c.textStats([]byte("detail"), mode)
	if string(mode) != "dump" {
		c.binOK(b)
		return
	}
	if !bytes.HasSuffix(text, []byte("END\r\n")) {
		text = []byte("END\r\n") // no detail recorded
	}
	c.out = protocol.AppendBinary(c.out, b.Op, protocol.StatusOK, b.Opaque, 0, nil, []byte("detailed"), text)
	c.out = protocol.AppendBinaryHeader(c.out, b.Op, protocol.StatusOK, 0, 0, 0, b.Opaque, 0)
}

// binFinish ends a binary request that went to Start, with its outcome q
// (finish).
func (c *conn) binFinish(b *protocol.Binary, q *Request) {
	switch b.Base() {
	case protocol.BinIncrement, protocol.BinDecrement:
		c.binArithDone(b, q)
	case protocol.BinDelete:
		c.binDeleted(b, q.Res, q.Err)
	case protocol.BinSet, protocol.BinAdd, protocol.BinReplace, protocol.BinAppend, protocol.BinPrepend:
		c.binStored(b, q.Res, q.Item, q.Err)
	default:
		c.binGot(b, q.Item, q.Val, q.Res)
	}
}

// binInline is inline (async.go) for a binary request.
func (c *conn) binInline(b *protocol.Binary) bool {
	if b.Invalid || b.Malformed {
		return true
	}
	switch b.Base() {
	case protocol.BinFlush:
		return c.cache.Inline(nil) // names no key: see inline
	case protocol.BinGet, protocol.BinGetK, protocol.BinGAT, protocol.BinGATK, protocol.BinTouch:
		return true // Start
	case protocol.BinSet, protocol.BinAdd, protocol.BinReplace, protocol.BinAppend, protocol.BinPrepend:
		if !b.TooLarge && !b.NoMemory && c.srv.items.Fits(len(b.Key), len(b.Value)) {
			return true // Start, unless Inline
		}
	case protocol.BinDelete, protocol.BinIncrement, protocol.BinDecrement:
		return true // Start
	}
	if len(b.Key) == 0 {
		return true // noop, version, stat, quit: this node only
	}
	return c.cache.Inline(b.Key)
}
