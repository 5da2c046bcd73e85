package server

import (
	"bytes"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
)

// detail is memcached's "stats detail": while on, classic get, set and
// delete are counted per key prefix (the key up to its first delimiter,
// ':' or -D; keys without one are not counted), and "stats detail dump"
// lists them.
type detail struct {
	on    atomic.Bool
	delim byte // set before use
	// mu guards byPrefix.
	mu       sync.Mutex
	byPrefix map[string]*prefixCounts
}

type prefixCounts struct{ get, hit, set, del int64 }

// maxPrefixes bounds the prefixes stats detail counts (memcached has no
// bound); keys with a new prefix past it are not counted.
const maxPrefixes = 4096

// prefixOp is which count a command adds to.
type prefixOp uint8

const (
	prefixGet prefixOp = iota
	prefixSet
	prefixDel
)

// count records one operation on key, if detail is on.
func (d *detail) count(key []byte, op prefixOp, hit bool) {
	if !d.on.Load() {
		return
	}
	i := bytes.IndexByte(key, d.delim)
	if i < 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byPrefix == nil {
		d.byPrefix = make(map[string]*prefixCounts)
	}
	pc := d.byPrefix[string(key[:i])]
	if pc == nil {
		if len(d.byPrefix) >= maxPrefixes {
			return // a client inventing prefixes must not grow this without end
		}
		pc = &prefixCounts{}
		d.byPrefix[string(key[:i])] = pc
	}
	switch op {
	case prefixGet:
		pc.get++
		if hit {
			pc.hit++
		}
	case prefixSet:
		pc.set++
	case prefixDel:
		pc.del++
	}
}

// clear forgets every prefix's counts ("stats reset"), on or off.
func (d *detail) clear() {
	d.mu.Lock()
	d.byPrefix = nil
	d.mu.Unlock()
}

// dump appends memcached's "PREFIX <p> get <n> hit <n> set <n> del <n>"
// lines, by prefix (memcached lists them in its hash table's order).
func (d *detail) dump(out []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.byPrefix))
	for p := range d.byPrefix {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		pc := d.byPrefix[p]
		out = append(out, "PREFIX "...)
		out = append(out, p...)
		for _, f := range [...]struct {
			name string
			v    int64
		}{{" get ", pc.get}, {" hit ", pc.hit}, {" set ", pc.set}, {" del ", pc.del}} {
			out = append(out, f.name...)
			out = strconv.AppendInt(out, f.v, 10)
		}
		out = append(out, "\r\n"...)
	}
	return out
}

// detail answers stats detail on|off|dump.
func (c *conn) detail(args [][]byte) {
	if len(args) == 0 {
		c.line("CLIENT_ERROR usage: stats detail on|off|dump")
		return
	}
	d := &c.srv.detail
	switch string(args[0]) {
	case "on":
		d.on.Store(true)
		c.line(replyOK)
	case "off":
		d.on.Store(false)
		c.line(replyOK)
	case "dump":
		c.out = d.dump(c.out)
		c.line("END")
	default:
		c.line("CLIENT_ERROR usage: stats detail on|off|dump")
	}
}
