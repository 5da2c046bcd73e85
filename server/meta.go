package server

import (
	"shoal/protocol"
	"shoal/store"
)

// Meta commands (mg, ms, md, ma, me) as memcached 1.6.18 runs them. Return
// flags are echoed in request order, as memcached walks its tokens; W, X and
// Z come last. Quiet mode (q) drops only the nominal reply of each command:
// mg's EN, ms's and md's HD, ma's HD and VA. Errors are always sent.
//
// Keys come back base64-encoded the way memcached decides it: mg's k on a
// hit and me follow the item (store.Item.KeyBinary, set by ms b), so an
// item that mg N just created answers raw even to a request with b; every
// other k follows the request's own b.

// execMeta runs a meta command.
func (c *conn) execMeta(cmd protocol.Command) {
	switch cmd := cmd.(type) {
	case *protocol.MetaGet:
		c.metaGet(cmd)
	case *protocol.MetaSet:
		c.metaSet(cmd)
	case *protocol.MetaDelete:
		c.metaDelete(cmd)
	case *protocol.MetaArith:
		c.metaArith(cmd)
	case *protocol.MetaDebug:
		c.metaDebug(cmd)
	case *protocol.ShardDump:
		c.shardDump(cmd)
	default:
		c.line("ERROR")
	}
}

func (c *conn) metaGet(m *protocol.MetaGet) {
	if c.noRoom(m) {
		return
	}
	now := c.srv.items.Now()
	opt := &c.opt.get
	*opt = store.GetOptions{NoBump: m.NoBump}
	if m.HasTTL {
		opt.Touch, opt.Exptime = true, absExptime(now, m.TTL)
	}
	if m.HasVivify {
		opt.Vivify, opt.VivifyExptime = true, createdExptime(m.Flags, absExptime(now, m.VivifyTTL), opt.Exptime)
	}
	if m.HasRecache {
		opt.RecacheBelow = recacheBelow(now, m.RecacheTTL)
	}
	c.getRequest(m.Key, opt)
	c.replicaRequest(&m.MetaOptions)
	if c.call(m) {
		return
	}
	c.metaGot(m, c.req.Item, c.req.Val, c.req.Res)
}

// metaGot appends mg's reply to its result; c.opt.get holds its options.
func (c *conn) metaGot(m *protocol.MetaGet, it store.Item, val []byte, res store.Result) {
	if c.gaveUp(res) {
		return
	}
	now := c.srv.items.Now()
	opt := &c.opt.get
	vivExp := int64(0)
	if m.HasVivify {
		vivExp = absExptime(now, m.VivifyTTL)
	}
	c.val = val
	if c.watching(streamFetchers) {
		c.logGet(m.Key, res == store.Hit && !it.Created, it.Size)
	}
	if res != store.Hit {
		// memcached counts a miss as a get even with T.
		c.ctr.cmdGet.Add(1)
		c.ctr.getMisses.Add(1)
		if !m.Quiet {
			c.out = protocol.AppendMetaStatus(c.out, protocol.MetaEN)
			c.out = appendMetaEcho(c.out, m.Key, &m.MetaOptions)
			if m.HasEpoch && it.CAS != 0 {
				c.out = protocol.AppendMetaFlagUint(c.out, 'c', it.CAS) // a remembered delete (Request.Replica)
			}
			c.out = protocol.AppendCRLF(c.out)
		}
		return
	}
	if m.HasTTL {
		c.ctr.cmdTouch.Add(1)
		c.ctr.touchHits.Add(1)
	} else {
		c.ctr.cmdGet.Add(1)
		c.ctr.getHits.Add(1)
	}
	// A value larger than the sender's room (A, a peer's forwarded get)
	// is not sent: its size is, and the sender asks again with room.
	withValue := m.ReturnValue && !(m.HasRoom && uint64(len(val)) > m.Room)
	c.metaHead(withValue, len(val))
	if m.ReturnValue && !withValue && !m.ReturnSize {
		c.out = protocol.AppendMetaFlagInt(c.out, 's', int64(len(val)))
	}
	exp := startExptime(&it)
	for _, f := range m.Flags {
		exp = tokenExptime(f.Code, exp, opt.Exptime, vivExp, it.Created)
		switch f.Code {
		case 's':
			c.out = protocol.AppendMetaFlagInt(c.out, 's', int64(len(val)))
		case 't':
			c.out = protocol.AppendMetaFlagInt(c.out, 't', ttlLeft(now, exp))
		case 'c':
			c.out = protocol.AppendMetaFlagUint(c.out, 'c', it.CAS)
		case 'f':
			c.out = protocol.AppendMetaFlagUint(c.out, 'f', uint64(it.Flags))
		case 'l':
			c.out = protocol.AppendMetaFlagInt(c.out, 'l', max(now-it.LastAccess, 0))
		case 'h':
			h := int64(0)
			if it.Fetched {
				h = 1
			}
			c.out = protocol.AppendMetaFlagInt(c.out, 'h', h)
		case 'O':
			c.out = protocol.AppendMetaOpaque(c.out, f.Value)
		case 'k':
			c.out = protocol.AppendMetaKey(c.out, m.Key, it.KeyBinary)
		}
	}
	// Z before W, and never both: a client sees either that it won the
	// token or that someone else holds it.
	if it.TokenSent {
		c.out = protocol.AppendMetaFlag(c.out, 'Z')
	}
	if it.Stale {
		c.out = protocol.AppendMetaFlag(c.out, 'X')
	}
	if it.Win {
		c.out = protocol.AppendMetaFlag(c.out, 'W')
	}
	c.out = protocol.AppendCRLF(c.out)
	if withValue {
		c.out = append(c.out, val...)
		c.out = protocol.AppendCRLF(c.out)
	}
	c.dropLargeVal()
}

// noRoom answers a peer's mg whose room (A) the value here is larger
// than by the value's size alone, before any of the get runs: the value
// is not even read (a thousand of them asked for at once, each copied
// only to be withheld, kept this node from answering within the peer
// timeout). The sender asks again with room; the get then runs whole.
// metaGot withholds a value that grew past the room since.
func (c *conn) noRoom(m *protocol.MetaGet) bool {
	if !m.HasRoom || !m.ReturnValue || !c.srv.cfg.PeerExtensions {
		return false
	}
	n, ok := c.srv.items.Peek(m.Key)
	if !ok || uint64(n) <= m.Room {
		return false
	}
	c.out = protocol.AppendMetaStatus(c.out, protocol.MetaHD)
	c.out = protocol.AppendMetaFlagInt(c.out, 's', int64(n))
	c.out = appendMetaEcho(c.out, m.Key, &m.MetaOptions)
	c.out = protocol.AppendCRLF(c.out)
	return true
}

// metaHead starts a successful meta reply: "VA <n>" when the value is
// returned, else "HD"; return flags follow.
func (c *conn) metaHead(returnValue bool, n int) {
	if returnValue {
		c.out = protocol.AppendMetaValueHeader(c.out, n)
	} else {
		c.out = protocol.AppendMetaStatus(c.out, protocol.MetaHD)
	}
}

// tokenExptime is the exptime a t flag reports after token code, given the
// one before it: memcached applies T (touch) and, on an item it created, N
// (vivify) in request order.
func tokenExptime(code byte, exp, touch, vivify int64, created bool) int64 {
	switch {
	case code == 'T':
		return touch
	case code == 'N' && created:
		return vivify
	}
	return exp
}

// startExptime is the exptime a t flag reports before any T or N token.
// memcached applies T and N when it reaches them, so "t T30" reports the old
// TTL and "T30 t" the new one; an item mg N or ma N just created starts
// with none (t-1) until its N token.
func startExptime(it *store.Item) int64 {
	if it.Created {
		return 0
	}
	return it.Exptime
}

// createdExptime is the exptime an item created by N ends with: the value
// of the last of its N and T tokens, which memcached applies in order.
func createdExptime(flags []protocol.MetaFlag, vivify, touch int64) int64 {
	exp := int64(0)
	for _, f := range flags {
		switch f.Code {
		case 'N':
			exp = vivify
		case 'T':
			exp = touch
		}
	}
	return exp
}

// recacheBelow converts mg R to the store's threshold in seconds left.
// memcached compares the item's exptime with realtime(R), so an R of zero,
// a negative one or an absolute time already past never wins.
func recacheBelow(now, ttl int64) int64 {
	abs := absExptime(now, ttl)
	if abs == 0 {
		return 0
	}
	return max(abs-now, 0)
}

// appendMetaEcho appends the flags every meta reply carries whatever the
// outcome, O and k, in request order: all a miss's reply carries.
func appendMetaEcho(dst, key []byte, o *protocol.MetaOptions) []byte {
	for _, f := range o.Flags {
		switch f.Code {
		case 'O':
			dst = protocol.AppendMetaOpaque(dst, f.Value)
		case 'k':
			dst = protocol.AppendMetaKey(dst, key, o.Base64)
		}
	}
	return dst
}

// itemHeaderSize is the store's per-item header (store/doc.go: "a 32-byte
// header, the key, then the value"); me reports the bytes an item occupies.
const itemHeaderSize = 32

// metaDebug answers me with memcached's fields filled from shoal's item:
// exp as memcached prints it (now minus exptime, so negative while the item
// lives, -1 for never), la in seconds since the last access, the store's
// size class and the item's size with its header.
func (c *conn) metaDebug(m *protocol.MetaDebug) {
	c.ctr.cmdMeta.Add(1)
	opt := &c.opt.get
	*opt = store.GetOptions{NoBump: true}
	it, val, res := c.get(m.Key, opt)
	c.val = val[:0]
	if c.gaveUp(res) {
		return
	}
	if c.watching(streamFetchers) {
		c.logGet(m.Key, res == store.Hit, it.Size)
	}
	if res != store.Hit {
		c.line(protocol.MetaEN)
		return
	}
	now := c.srv.items.Now()
	exp := int64(-1)
	if it.Exptime != 0 {
		exp = now - it.Exptime
	}
	size := itemHeaderSize + len(m.Key) + it.Size
	c.out = protocol.AppendMetaDebug(c.out, m.Key, it.KeyBinary, exp, max(now-it.LastAccess, 0),
		it.CAS, it.Fetched, c.sizeClass(size), int64(size))
}

// sizeClass is the id of the smallest class holding size bytes among the
// classes that own memory: the item's own class, since it lives in one.
func (c *conn) sizeClass(size int) int {
	for _, cl := range c.srv.items.Stats().Classes {
		if cl.ChunkSize >= size {
			return cl.ID
		}
	}
	return 0
}
