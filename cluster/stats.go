package cluster

import (
	"strconv"

	"shoal/membership"
)

// Counters is a snapshot of the router's own counters: the shards
// warming now, the items warm-up pulled, dropped as possibly stale and
// read through from a source, the pauses noticed, the lapses of this
// node's registration recovered from (takeover/lapse.go), the replicated
// writes applied, and those refused for an old epoch; the members owed
// writes they missed, the shards owed and the items and deletes handed
// back (hints.go); the shards re-verified after a co-owner came back
// (takeover/returns.go); the deletes remembered with their version
// (tomb); the other owners' values multi-gets hold (hold.go). It feeds
// "stats cluster" and /metrics. Its takeover counters are a copy of
// takeover.Counters.
type Counters struct {
	WarmShards                        int
	Pulled, Dropped, ReadThrough      uint64
	DeltaShards, DeltaRefused         uint64 // a warm restart's pulls (takeover/restart.go)
	Pauses, Lapses                    uint64
	ReplicaWrites, ReplicaStaleEpochs uint64
	HintMembers, HintShards           int
	HandedBack, Reverified            uint64
	Tombstones                        int
	TombstonesEvicted                 uint64
	// MultiGetHeld, MultiGetHeldPeak: other owners' values multi-gets
	// hold now, and the most they held (hold.go).
	MultiGetHeld, MultiGetHeldPeak int64
}

// Counters returns the router's counters.
func (r *Router) Counters() Counters {
	k := r.tk.Counters()
	t := Counters{
		WarmShards: k.WarmShards, Pulled: k.Pulled, Dropped: k.Dropped, ReadThrough: k.ReadThrough,
		DeltaShards: k.DeltaShards, DeltaRefused: k.DeltaRefused, Pauses: k.Pauses, Lapses: k.Lapses,
		Reverified: k.Reverified,
	}
	t.ReplicaWrites, t.ReplicaStaleEpochs = r.replicated.Load(), r.staleEpochs.Load()
	t.HintMembers, t.HintShards, t.HandedBack = r.push.hints.stats()
	t.Tombstones, _, t.TombstonesEvicted = r.tombs.Stats()
	t.MultiGetHeld, t.MultiGetHeldPeak = r.hold.stats()
	return t
}

// ClusterStats lists Counters, then PeerStats as one group of lines per
// member, for the memcached "stats cluster" command.
func (r *Router) ClusterStats() [][2]string {
	out := r.counterStats()
	held, peak := r.hold.stats()
	out = append(out,
		[2]string{"multiget_held_bytes", strconv.FormatInt(held, 10)},
		[2]string{"multiget_held_peak_bytes", strconv.FormatInt(peak, 10)},
		[2]string{"multiget_hold_limit", strconv.FormatInt(r.hold.limit, 10)},
	)
	for _, p := range r.PeerStats() {
		pre := "peer:" + p.Peer + ":"
		out = append(out,
			[2]string{pre + "forwarded", strconv.FormatUint(p.Forwarded, 10)},
			[2]string{pre + "forward_failures", strconv.FormatUint(p.Failures, 10)},
			[2]string{pre + "repl_lag_seconds", strconv.FormatFloat(p.ReplLag.Seconds(), 'f', 3, 64)},
			[2]string{pre + "repl_lag_sequences", strconv.Itoa(p.ReplLagSeq)},
			[2]string{pre + "repl_queue_bytes", strconv.FormatInt(p.ReplQueueBytes, 10)},
			[2]string{pre + "repl_queue_drops", strconv.FormatUint(p.ReplQueueDrops, 10)},
			[2]string{pre + "repl_stale", strconv.FormatUint(p.ReplStale, 10)},
			[2]string{pre + "down", digit(p.Down)},
		)
	}
	return out
}

// digit is "1" for true, "0" for false, as memcached's stats print flags.
func digit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// counterStats lists Counters as "stats cluster" lines.
func (r *Router) counterStats() [][2]string {
	t := r.Counters()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return [][2]string{
		{"warm_shards", strconv.Itoa(t.WarmShards)},
		{"warm_pulled_items", u(t.Pulled)},
		{"warm_dropped_items", u(t.Dropped)},
		{"warm_read_through", u(t.ReadThrough)},
		{"warm_delta_shards", u(t.DeltaShards)},
		{"warm_delta_refused", u(t.DeltaRefused)},
		{"pauses", u(t.Pauses)},
		{"lapses", u(t.Lapses)},
		{"replica_writes", u(t.ReplicaWrites)},
		{"replica_stale_epochs", u(t.ReplicaStaleEpochs)},
		{"hint_members", strconv.Itoa(t.HintMembers)},
		{"hint_shards", strconv.Itoa(t.HintShards)},
		{"handed_back_items", u(t.HandedBack)},
		{"reverified_shards", u(t.Reverified)},
		{"tombstones", strconv.Itoa(t.Tombstones)},
		{"tombstones_evicted", u(t.TombstonesEvicted)},
	}
}

// Info answers the client port's "stats cluster" (server.ClusterInfo: the
// view, then the router's takeover and per-peer lines, from the same
// counters /metrics uses) and "stats ring".
type Info struct {
	Node   *membership.Node
	Router *Router
}

// RingStats answers "stats ring" for ring-aware clients.
func (c Info) RingStats() [][2]string { return c.Node.RingStats() }

// ClusterStats answers "stats cluster".
func (c Info) ClusterStats() [][2]string {
	return append(c.Node.ClusterStats(), c.Router.ClusterStats()...)
}
