package server

import (
	"bytes"
	"sort"
	"strconv"

	"shoal/protocol"
	"shoal/store"
)

// cachedumpMax bounds a stats cachedump reply, as memcached's 2 MB.
const cachedumpMax = 2 << 20

// lists reports whether cmd lists items, or is a watch: it may run long,
// so an event loop runs it on a goroutine of its own, its writes waiting
// for the socket. A listing refused at once (bad arguments, replies pipelined
// before a metadump) stays on the loop, so that it is refused as
// memcached refuses it within the same batch of commands.
func (c *conn) lists(cmd protocol.Command) bool {
	switch cmd := cmd.(type) {
	case *protocol.Maintenance:
		if cmd.Family == protocol.MaintWatch {
			return c.watches(cmd.Args)
		}
		if cmd.Family != protocol.MaintCrawler || len(cmd.Args) != 2 || string(cmd.Args[0]) != "metadump" || len(c.out) > c.sent {
			return false
		}
		_, ok := c.classSet(cmd.Args[1])
		return ok
	case *protocol.Stats:
		return string(cmd.Arg) == "cachedump" && len(cmd.Args) == 3
	}
	return false
}

// maintenance answers lru_crawler, slabs, lru and watch as memcached
// 1.6.18 does, from shoal's own structures: its TTL reclaimer and CLOCK
// evictor have no modes to set, so the tuning subcommands are accepted
// and change nothing (README lists them).
func (c *conn) maintenance(m *protocol.Maintenance) {
	switch m.Family {
	case protocol.MaintCrawler:
		c.crawler(m.Args)
	case protocol.MaintSlabs:
		c.slabsCommand(m.Args)
	case protocol.MaintLRU:
		c.lruCommand(m.Args)
	default:
		c.watchCommand(m.Args)
	}
}

func (c *conn) crawler(args [][]byte) {
	sub, n := string(args[0]), len(args)
	switch {
	case sub == "metadump" && n == 2:
		if len(c.out) > c.sent {
			// memcached streams a dump itself, after the replies before it.
			c.line("ERROR cannot pipeline other commands before metadump")
			return
		}
		classes, ok := c.classSet(args[1])
		if !ok {
			c.line("BADCLASS invalid class id")
			return
		}
		c.metadump(classes)
	case sub == "crawl" && n == 2:
		if _, ok := c.classSet(args[1]); !ok {
			c.line("BADCLASS invalid class id")
			return
		}
		c.line(replyOK) // the reclaimer crawls every class all the time
	case (sub == "sleep" || sub == "tocrawl") && n == 2:
		v, err := strconv.ParseUint(string(args[1]), 10, 32)
		switch {
		case err != nil:
			c.line(replyBadFormat)
		case sub == "sleep" && v > 1000000:
			c.line("CLIENT_ERROR sleep must be one second or less")
		default:
			c.line(replyOK)
		}
	case sub == "enable" && n == 1:
		// memcached's answer when its crawler runs already: shoal's
		// reclaimer always does.
		c.line("ERROR failed to start lru crawler thread")
	case sub == "disable" && n == 1:
		c.line(replyOK)
	default:
		c.line("ERROR")
	}
}

// classSet parses "all", "hash" or a comma-separated list of class ids;
// nil means every class.
func (c *conn) classSet(arg []byte) (map[int]bool, bool) {
	if s := string(arg); s == "all" || s == "hash" {
		return nil, true
	}
	known := make(map[int]bool)
	for _, cl := range c.srv.items.Stats().Classes {
		known[cl.ID] = true
	}
	set := make(map[int]bool)
	for _, f := range bytes.Split(arg, []byte(",")) {
		id, err := strconv.Atoi(string(f))
		if err != nil || !known[id] {
			return nil, false
		}
		set[id] = true
	}
	return set, true
}

// sizer finds the size class of an item's total size, as me reports it.
type sizer []store.ClassStats

func (c *conn) sizer() sizer {
	cl := c.srv.items.Stats().Classes
	sort.Slice(cl, func(i, j int) bool { return cl[i].ChunkSize < cl[j].ChunkSize })
	return cl
}

func (z sizer) class(size int) int {
	i := sort.Search(len(z), func(i int) bool { return z[i].ChunkSize >= size })
	if i == len(z) {
		return 0
	}
	return z[i].ID
}

// metadump answers lru_crawler metadump: one line per item (memcached's
// format, "\n"-terminated), then END.
func (c *conn) metadump(classes map[int]bool) {
	z := c.sizer()
	c.srv.items.Range(func(key []byte, it store.Item, _ []byte) bool {
		size := itemHeaderSize + len(key) + it.Size
		cls := z.class(size)
		if classes != nil && !classes[cls] {
			return true
		}
		exp := int64(-1)
		if it.Exptime != 0 {
			exp = it.Exptime
		}
		c.out = append(c.out, "key="...)
		c.out = appendURIEncoded(c.out, key)
		c.out = append(c.out, " exp="...)
		c.out = strconv.AppendInt(c.out, exp, 10)
		c.out = append(c.out, " la="...)
		c.out = strconv.AppendInt(c.out, it.LastAccess, 10)
		c.out = append(c.out, " cas="...)
		c.out = strconv.AppendUint(c.out, it.CAS, 10)
		c.out = append(c.out, " fetch="...)
		c.out = append(c.out, yesNo(it.Fetched)...)
		c.out = append(c.out, " cls="...)
		c.out = strconv.AppendInt(c.out, int64(cls), 10)
		c.out = append(c.out, " size="...)
		c.out = strconv.AppendInt(c.out, int64(size), 10)
		c.out = append(c.out, '\n')
		if len(c.out) >= flushAt {
			c.flush()
		}
		return c.err == nil
	})
	c.line("END")
}

// appendURIEncoded appends key as memcached's metadump encodes it: bytes
// other than letters, digits and "-._~" as %XX.
func appendURIEncoded(dst, key []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, b := range key {
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '.', b == '_', b == '~':
			dst = append(dst, b)
		default:
			dst = append(dst, '%', hex[b>>4], hex[b&15])
		}
	}
	return dst
}

// cachedump answers stats cachedump <class> <limit>: the items of one
// class, "ITEM <key> [<bytes> b; <exptime> s]", at most limit (0: all) and
// 2 MB of reply.
func (c *conn) cachedump(args [][]byte) {
	if len(args) != 3 {
		c.line("CLIENT_ERROR bad command line")
		return
	}
	id, err1 := strconv.ParseUint(string(args[1]), 10, 32)
	limit, err2 := strconv.ParseUint(string(args[2]), 10, 32)
	if err1 != nil || err2 != nil {
		c.line(replyBadFormat)
		return
	}
	z := c.sizer()
	known := id == 0
	for _, cl := range z {
		known = known || cl.ID == int(id)
	}
	if !known {
		c.line("CLIENT_ERROR Illegal slab id")
		return
	}
	if id == 0 {
		c.line("END")
		return
	}
	n, bytes := uint64(0), 0
	c.srv.items.Range(func(key []byte, it store.Item, _ []byte) bool {
		if z.class(itemHeaderSize+len(key)+it.Size) != int(id) {
			return true
		}
		start := len(c.out)
		c.out = append(c.out, "ITEM "...)
		c.out = append(c.out, key...)
		c.out = append(c.out, " ["...)
		c.out = strconv.AppendInt(c.out, int64(it.Size), 10)
		c.out = append(c.out, " b; "...)
		c.out = strconv.AppendInt(c.out, it.Exptime, 10)
		c.out = append(c.out, " s]\r\n"...)
		bytes += len(c.out) - start
		n++
		if len(c.out) >= flushAt {
			c.flush()
		}
		return c.err == nil && (limit == 0 || n < limit) && bytes < cachedumpMax
	})
	c.line("END")
}

func (c *conn) slabsCommand(args [][]byte) {
	switch {
	case string(args[0]) == "automove" && len(args) == 2:
		v, err := strconv.ParseUint(string(args[1]), 10, 32)
		switch {
		case err != nil:
			c.line(replyBadFormat)
		case v > 2:
			c.line("ERROR")
		default:
			c.line(replyOK) // the store moves pages itself, on demand
		}
	case string(args[0]) == "reassign" && len(args) == 3:
		src, err1 := strconv.ParseInt(string(args[1]), 10, 32)
		dst, err2 := strconv.ParseInt(string(args[2]), 10, 32)
		if err1 != nil || err2 != nil {
			c.line(replyBadFormat)
			return
		}
		known := map[int64]bool{}
		for _, cl := range c.srv.items.Stats().Classes {
			known[int64(cl.ID)] = true
		}
		switch {
		case !known[src] || !known[dst]:
			c.line("BADCLASS invalid src or dst class id")
		case src == dst:
			c.line("SAME src and dst class are identical")
		default:
			// Pages move by themselves when a class needs one; none is
			// kept spare to move on request.
			c.line("NOSPARE source class has no spare pages")
		}
	default:
		c.line("ERROR")
	}
}

func (c *conn) lruCommand(args [][]byte) {
	ok := false
	switch string(args[0]) {
	case "mode":
		ok = len(args) == 2 && (string(args[1]) == "flat" || string(args[1]) == "segmented")
	case "temp_ttl":
		if len(args) == 2 {
			_, err := strconv.ParseInt(string(args[1]), 10, 32)
			ok = err == nil
		}
	case "tune":
		ok = len(args) == 5
	}
	if ok {
		c.line(replyOK) // CLOCK has no LRU segments to tune
		return
	}
	c.line("ERROR")
}
