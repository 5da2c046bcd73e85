package server

import (
	"errors"
	"strconv"

	"shoal/protocol"
	"shoal/store"
)

// replyMetaNoMemory is ma's out-of-memory error, shorter than the one of
// the storage commands.
const replyMetaNoMemory = "SERVER_ERROR out of memory"

// metaStatus is the meta status code for a write result.
func metaStatus(r store.Result) string {
	switch r {
	case store.Stored, store.Deleted:
		return protocol.MetaHD
	case store.Exists:
		return protocol.MetaEX
	case store.NotFound:
		return protocol.MetaNF
	default:
		return protocol.MetaNS
	}
}

func (c *conn) metaSet(m *protocol.MetaSet) {
	c.ctr.cmdSet.Add(1)
	if !c.srv.items.Fits(len(m.Key), len(m.Data)) {
		c.ctr.storeTooLarge.Add(1)
		// memcached unlinks the old item whatever the mode.
		c.refused(protocol.OpSet, m.Key, store.TooLarge)
		c.line(replyTooLarge)
		return
	}
	if m.Op == protocol.OpCAS && m.CAS == 0 {
		// No item ever has CAS 0, while the store reads 0 as "no compare".
		res, prior := c.casZeroResult(m.Key)
		c.prior = prior
		c.metaStored(m, res, store.Item{}, nil)
		return
	}
	opt := &c.opt.set
	*opt = store.SetOptions{Mode: storeModes[m.Op], Flags: m.ClientFlags, KeyBinary: m.Base64, NewCAS: m.NewCAS}
	if m.HasTTL {
		opt.Exptime = absExptime(c.srv.items.Now(), m.TTL)
	}
	switch m.Op {
	case protocol.OpCAS:
		opt.CAS, opt.Invalidate = m.CAS, m.Invalidate
	case protocol.OpAppend, protocol.OpPrepend:
		// memcached compares a non-zero CAS here too; add ignores it.
		opt.CAS = m.CAS
	}
	if c.watching(streamFetchers | streamMutations) {
		c.peekPrior(m.Key)
	}
	c.setRequest(m.Key, m.Data, opt)
	c.replicaRequest(&m.MetaOptions)
	if c.call(m) {
		return
	}
	c.metaStored(m, c.req.Res, c.req.Item, c.req.Err)
}

// metaStored appends the reply of an ms's write and counts it.
func (c *conn) metaStored(m *protocol.MetaSet, res store.Result, it store.Item, err error) {
	if err != nil {
		c.writeError(err)
		return
	}
	if c.watching(streamFetchers | streamMutations) {
		exp := int64(0)
		if m.HasTTL {
			exp = absExptime(c.srv.items.Now(), m.TTL)
		}
		c.watchWrite(m.Key, storeCmds[m.Op], res, exp, len(m.Data))
	}
	if m.Op == protocol.OpCAS {
		c.countCAS(res)
	}
	switch res {
	case store.TooLarge:
		c.ctr.storeTooLarge.Add(1)
		c.line(replyTooLarge)
		return
	case store.NoMemory:
		c.ctr.storeNoMemory.Add(1)
		c.line(replyNoMemory)
		return
	case store.Stored:
		if m.Quiet {
			return
		}
	default:
		it.CAS = 0 // memcached returns c0 when nothing was stored
	}
	c.out = protocol.AppendMetaStatus(c.out, metaStatus(res))
	for _, f := range m.Flags {
		switch f.Code {
		case 'O':
			c.out = protocol.AppendMetaOpaque(c.out, f.Value)
		case 'k':
			c.out = protocol.AppendMetaKey(c.out, m.Key, m.Base64)
		case 'c':
			c.out = protocol.AppendMetaFlagUint(c.out, 'c', it.CAS)
		}
	}
	c.out = protocol.AppendCRLF(c.out)
}

// casZeroResult answers a compare against CAS 0 the way memcached does:
// Exists when the key is present, NotFound otherwise; and, for watch, the
// item's value length plus one (0: none), as store.SetOptions.Prior.
func (c *conn) casZeroResult(key []byte) (store.Result, int32) {
	opt := &c.opt.get
	*opt = store.GetOptions{NoBump: true}
	it, val, r := c.get(key, opt)
	c.val = val[:0]
	c.gaveUp(r) // its NotFound is then not answered
	if r == store.Hit {
		return store.Exists, int32(it.Size + 1)
	}
	return store.NotFound, 0
}

func (c *conn) metaDelete(m *protocol.MetaDelete) {
	if m.HasCAS && m.CAS == 0 {
		res, prior := c.casZeroResult(m.Key)
		c.prior = prior
		c.metaDeleted(m, res, nil)
		return
	}
	if c.watching(streamFetchers) {
		c.peekPrior(m.Key)
	}
	opt := &c.opt.del
	*opt = store.DeleteOptions{CAS: m.CAS, Invalidate: m.Invalidate, NewCAS: m.NewCAS}
	if m.Invalidate && m.HasTTL {
		opt.Touch, opt.Exptime = true, absExptime(c.srv.items.Now(), m.TTL)
	}
	c.deleteRequest(m.Key, opt)
	c.replicaRequest(&m.MetaOptions)
	if c.call(m) {
		return
	}
	c.metaDeleted(m, c.req.Res, c.req.Err)
}

// metaDeleted appends the reply of an md and counts it.
func (c *conn) metaDeleted(m *protocol.MetaDelete, res store.Result, err error) {
	if err != nil {
		c.writeError(err)
		return
	}
	if c.watching(streamFetchers) {
		c.logLookup(m.Key, res == store.Deleted || res == store.Exists)
	}
	switch {
	case res != store.Deleted:
		c.ctr.deleteMisses.Add(1)
	case !m.Invalidate:
		c.ctr.deleteHits.Add(1) // marking stale is not a delete for memcached
	}
	if res == store.Deleted && m.Quiet {
		return
	}
	c.out = protocol.AppendMetaStatus(c.out, metaStatus(res))
	c.out = appendMetaEcho(c.out, m.Key, &m.MetaOptions)
	c.out = protocol.AppendCRLF(c.out)
}

func (c *conn) metaArith(m *protocol.MetaArith) {
	now := c.srv.items.Now()
	opt := &c.opt.arith
	*opt = store.ArithOptions{Decr: m.Decr, Delta: m.Delta, CAS: m.CAS, NewCAS: m.NewCAS}
	if m.HasTTL {
		opt.Touch, opt.Exptime = true, absExptime(now, m.TTL)
	}
	vivExp := int64(0)
	if m.HasVivify {
		vivExp = absExptime(now, m.VivifyTTL)
		opt.Vivify, opt.Initial = true, m.Initial
		opt.VivifyExptime = createdExptime(m.Flags, vivExp, opt.Exptime)
	}
	if c.watching(streamFetchers) {
		c.peekPrior(m.Key)
	}
	c.request(OpArith, m.Key).Arith = opt
	if !c.call(m) {
		c.metaArithDone(m, now, c.req.Res, c.req.N, c.req.Item, c.req.Err)
	}
}

// metaArithDone appends the reply of an ma and counts it, its TTLs as of
// now (the start's, unless it was pending); c.opt.arith holds its
// options.
func (c *conn) metaArithDone(m *protocol.MetaArith, now int64, res store.Result, v uint64, it store.Item, err error) {
	opt := &c.opt.arith
	vivExp := int64(0)
	if m.HasVivify {
		vivExp = absExptime(now, m.VivifyTTL)
	}
	if err != nil {
		c.serverError(false, err)
		return
	}
	if c.watching(streamFetchers | streamMutations) {
		c.watchArith(m.Key, res, v, it, opt.VivifyExptime)
	}
	hits, misses := &c.ctr.incrHits, &c.ctr.incrMisses
	if m.Decr {
		hits, misses = &c.ctr.decrHits, &c.ctr.decrMisses
	}
	switch res {
	case store.Stored:
	case store.NonNumeric:
		c.line(replyNonNumeric)
		return
	case store.NoMemory:
		c.ctr.storeNoMemory.Add(1)
		c.line(replyMetaNoMemory)
		return
	default:
		if res == store.NotFound {
			misses.Add(1)
		}
		c.out = protocol.AppendMetaStatus(c.out, metaStatus(res))
		c.out = appendMetaEcho(c.out, m.Key, &m.MetaOptions)
		c.out = protocol.AppendCRLF(c.out)
		return
	}
	// memcached counts an autovivified item neither as a hit nor as a
	// miss, and answers it even with q.
	if !it.Created {
		hits.Add(1)
		if m.Quiet {
			return
		}
	}
	var digits [20]byte
	val := strconv.AppendUint(digits[:0], v, 10)
	c.metaHead(m.ReturnValue, len(val))
	exp := startExptime(&it)
	for _, f := range m.Flags {
		exp = tokenExptime(f.Code, exp, opt.Exptime, vivExp, it.Created)
		switch f.Code {
		case 'c':
			c.out = protocol.AppendMetaFlagUint(c.out, 'c', it.CAS)
		case 't':
			c.out = protocol.AppendMetaFlagInt(c.out, 't', ttlLeft(now, exp))
		case 'O':
			c.out = protocol.AppendMetaOpaque(c.out, f.Value)
		case 'k':
			c.out = protocol.AppendMetaKey(c.out, m.Key, m.Base64)
		}
	}
	c.out = protocol.AppendCRLF(c.out)
	if m.ReturnValue {
		c.out = append(c.out, val...)
		c.out = protocol.AppendCRLF(c.out)
	}
}

// writeError answers a meta write the cache could not apply: a refused
// replicated write with the peer extension's line, anything else as
// SERVER_ERROR with the error's text.
func (c *conn) writeError(err error) {
	if errors.Is(err, ErrStaleOrigin) {
		c.line(protocol.ReplyStaleEpoch)
		return
	}
	c.serverError(false, err)
}
