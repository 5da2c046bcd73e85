package server

import "sync/atomic"

// counters are the per-connection command counters behind memcached's stats.
// Only the connection's goroutine increments them; stats readers load them
// from other goroutines, hence atomics (uncontended, so cheap).
type counters struct {
	cmdGet, cmdSet, cmdFlush, cmdTouch, cmdMeta atomic.Int64
	getHits, getMisses                          atomic.Int64
	deleteHits, deleteMisses                    atomic.Int64
	incrHits, incrMisses, decrHits, decrMisses  atomic.Int64
	casHits, casMisses, casBadval               atomic.Int64
	touchHits, touchMisses                      atomic.Int64
	storeTooLarge, storeNoMemory                atomic.Int64
	bytesRead, bytesWritten                     atomic.Int64
}

// fields lists the counters in memcached's stats order, with their names, so
// add, reset and the stats writer share one table.
func (c *counters) fields() []namedCounter {
	return []namedCounter{
		{"cmd_get", &c.cmdGet}, {"cmd_set", &c.cmdSet}, {"cmd_flush", &c.cmdFlush},
		{"cmd_touch", &c.cmdTouch}, {"cmd_meta", &c.cmdMeta},
		{"get_hits", &c.getHits}, {"get_misses", &c.getMisses},
		{"delete_misses", &c.deleteMisses}, {"delete_hits", &c.deleteHits},
		{"incr_misses", &c.incrMisses}, {"incr_hits", &c.incrHits},
		{"decr_misses", &c.decrMisses}, {"decr_hits", &c.decrHits},
		{"cas_misses", &c.casMisses}, {"cas_hits", &c.casHits}, {"cas_badval", &c.casBadval},
		{"touch_hits", &c.touchHits}, {"touch_misses", &c.touchMisses},
		{"store_too_large", &c.storeTooLarge}, {"store_no_memory", &c.storeNoMemory},
		{"bytes_read", &c.bytesRead}, {"bytes_written", &c.bytesWritten},
	}
}

type namedCounter struct {
	name string
	v    *atomic.Int64
}

// add accumulates o into c.
func (c *counters) add(o *counters) {
	dst, src := c.fields(), o.fields()
	for i := range dst {
		dst[i].v.Add(src[i].v.Load())
	}
}

func (c *counters) reset() {
	for _, f := range c.fields() {
		f.v.Store(0)
	}
}

// sum returns the totals over ended and live connections. Callers hold s.mu.
func (s *Server) sumLocked() *counters {
	var t counters
	t.add(&s.closed)
	for c := range s.conns {
		t.add(&c.ctr)
	}
	return &t
}
