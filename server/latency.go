package server

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"shoal/protocol"
)

// Command latency is sampled, not measured on every command: timing each
// one would put two clock reads on the hot path. Each connection counts
// down a random gap of 1..2*SampleEvery-1 commands (mean SampleEvery) and
// times the command where the count reaches zero. The gap is random rather
// than fixed so a client that repeats a short cycle (set, get, set, get)
// cannot hide one family from the sampler. The time covered is the
// command's execution: the cache call and building the reply, from a
// parsed command to its reply bytes in the output buffer; reading and
// writing the socket are not included.
const SampleEvery = 64

// Family is a command family for the latency histograms.
type Family uint8

// Command families, in the order Families lists their names.
const (
	FamGet        Family = iota // get gets gat gats
	FamSet                      // set add replace append prepend cas
	FamDelete                   // delete
	FamArith                    // incr decr
	FamTouch                    // touch
	FamMetaGet                  // mg
	FamMetaSet                  // ms
	FamMetaDelete               // md
	FamMetaArith                // ma
	FamOther                    // stats, flush_all, version, mn, me, ...
	numFamilies
)

// Families names every family, indexed by Family.
var Families = [numFamilies]string{
	"get", "set", "delete", "arith", "touch", "meta_get", "meta_set", "meta_delete", "meta_arith", "other",
}

// LatencyBounds are the upper bounds of the histogram buckets: 1µs to 1s in
// 1-2.5-5 steps. Execution of a local command takes microseconds; the upper
// buckets leave room for forwarded commands.
var LatencyBounds = [...]time.Duration{
	1 * time.Microsecond, 2500 * time.Nanosecond, 5 * time.Microsecond,
	10 * time.Microsecond, 25 * time.Microsecond, 50 * time.Microsecond,
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second,
}

// Latency is a snapshot of one family's sampled latencies. Buckets[i]
// counts samples at most LatencyBounds[i] (not cumulative); the last
// element counts the samples above every bound.
type Latency struct {
	Buckets [len(LatencyBounds) + 1]int64
	Count   int64
	Sum     time.Duration
}

// latencyHist is one family's histogram, shared by every connection of a
// server. Only sampled commands touch it, so the atomics are rarely
// contended.
type latencyHist struct {
	buckets [len(LatencyBounds) + 1]atomic.Int64
	count   atomic.Int64
	sum     atomic.Int64 // nanoseconds
}

func (h *latencyHist) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	h.sum.Add(int64(d))
}

func (h *latencyHist) snapshot() Latency {
	var l Latency
	for i := range h.buckets {
		l.Buckets[i] = h.buckets[i].Load()
	}
	l.Count = h.count.Load()
	l.Sum = time.Duration(h.sum.Load())
	return l
}

// run executes cmd, timing it when the connection's sampler says so.
func (c *conn) run(cmd protocol.Command) {
	c.sampleIn--
	if c.sampleIn > 0 {
		c.exec(cmd)
		return
	}
	c.sampleIn = nextGap()
	start := time.Now()
	c.exec(cmd)
	if c.hand.owner() == parked {
		c.hand.start = start // observed when the get completes
		return
	}
	c.srv.latency[family(cmd)].observe(time.Since(start))
}

// nextGap draws the number of commands until the next sample.
func nextGap() int32 { return 1 + rand.Int32N(2*SampleEvery-1) }

func family(cmd protocol.Command) Family {
	switch cmd.(type) {
	case *protocol.Retrieval:
		return FamGet
	case *protocol.Storage:
		return FamSet
	case *protocol.Delete:
		return FamDelete
	case *protocol.Arith:
		return FamArith
	case *protocol.Touch:
		return FamTouch
	case *protocol.MetaGet:
		return FamMetaGet
	case *protocol.MetaSet:
		return FamMetaSet
	case *protocol.MetaDelete:
		return FamMetaDelete
	case *protocol.MetaArith:
		return FamMetaArith
	default:
		return FamOther
	}
}
