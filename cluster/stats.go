package cluster

import (
	"strconv"

	"shoal/etcdsync"
	"shoal/gossip"
)

// Status is a snapshot of this node's view for people and exporters. One
// Status feeds "stats cluster", the /metrics exporter and the /cluster page.
type Status struct {
	Node     string // this node
	Fenced   bool   // no live registration in etcd
	Epoch    int64  // etcd revision of the membership; 0 before the first view
	Shards   int
	Replicas int
	// Members are the members of the ring: etcd lists them (each holds a
	// live lease: up as etcd sees it) and gossip has seen them; sorted by
	// name, with their gossip health.
	Members []MemberStatus
	// Unseen counts the members etcd lists that gossip has never seen
	// alive, left out of the ring (View.Unseen).
	Unseen int
	// Rejected is what this node refused to take from etcd: settings out
	// of bounds or changing the shard count, member records that do not
	// parse.
	Rejected etcdsync.Rejections
}

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	Name          string
	Addr          string // client address
	Health        gossip.State
	PrimaryShards int // shards it is the primary owner of
	OwnedShards   int // shards it holds a copy of, primary or replica
}

// Status returns the current view with each member's health.
func (n *Node) Status() Status {
	st := Status{Node: n.Name(), Fenced: n.Fenced(), Rejected: n.Rejections()}
	v := n.View()
	if v == nil {
		return st
	}
	st.Epoch, st.Shards, st.Replicas = v.Epoch, v.Settings.Shards, v.Settings.Replicas
	st.Unseen = len(v.Unseen)
	primaries := make(map[string]int, len(v.Members))
	owned := make(map[string]int, len(v.Members))
	for s := range v.Settings.Shards {
		for i, o := range v.Ring.Owners(s) {
			owned[o]++
			if i == 0 {
				primaries[o]++
			}
		}
	}
	st.Members = make([]MemberStatus, len(v.Members))
	for i, m := range v.Members {
		st.Members[i] = MemberStatus{
			Name:          m.Name,
			Addr:          m.ClientAddr,
			Health:        n.Health(m.Name),
			PrimaryShards: primaries[m.Name],
			OwnedShards:   owned[m.Name],
		}
	}
	return st
}

// ClusterStats lists the view as name/value pairs for the memcached
// "stats cluster" command: the epoch, this node, then one group of lines
// per member.
func (n *Node) ClusterStats() [][2]string {
	st := n.Status()
	out := [][2]string{
		{"cluster_node", st.Node},
		{"cluster_fenced", boolNum(st.Fenced)},
		{"cluster_epoch", strconv.FormatInt(st.Epoch, 10)},
		{"cluster_config_rejected", strconv.FormatUint(st.Rejected.Config, 10)},
		{"cluster_config_refused", boolNum(st.Rejected.ConfigRefused)},
		{"cluster_member_records_rejected", strconv.FormatUint(st.Rejected.Members, 10)},
		{"cluster_member_records_ignored", strconv.Itoa(st.Rejected.MembersIgnored)},
	}
	if st.Epoch == 0 {
		return out
	}
	out = append(out,
		[2]string{"cluster_members", strconv.Itoa(len(st.Members))},
		[2]string{"cluster_members_unseen", strconv.Itoa(st.Unseen)},
		[2]string{"cluster_shards", strconv.Itoa(st.Shards)},
		[2]string{"cluster_replicas", strconv.Itoa(st.Replicas)},
	)
	for _, m := range st.Members {
		p := "member:" + m.Name + ":"
		out = append(out,
			[2]string{p + "addr", m.Addr},
			[2]string{p + "health", m.Health.String()},
			[2]string{p + "primary_shards", strconv.Itoa(m.PrimaryShards)},
			[2]string{p + "owned_shards", strconv.Itoa(m.OwnedShards)},
		)
	}
	return out
}

func boolNum(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Takeover is a snapshot of the router's own counters: the shards
// warming now, the items warm-up pulled, dropped as possibly stale and
// read through from a source, the pauses noticed, the lapses of this
// node's registration recovered from (lapse.go), the replicated writes
// applied, and those refused for an old epoch; the members owed writes
// they missed, the shards owed and the items and deletes handed back
// (hints.go); the shards re-verified after a co-owner came back
// (returns.go); the deletes remembered with their version (tomb). It feeds
// "stats cluster" and /metrics.
type Takeover struct {
	WarmShards                        int
	Pulled, Dropped, ReadThrough      uint64
	DeltaShards, DeltaRefused         uint64 // a warm restart's pulls (restart.go)
	Pauses, Lapses                    uint64
	ReplicaWrites, ReplicaStaleEpochs uint64
	HintMembers, HintShards           int
	HandedBack, Reverified            uint64
	Tombstones                        int
	TombstonesEvicted                 uint64
}

// Takeover returns the router's counters.
func (r *Router) Takeover() Takeover {
	t := Takeover{
		WarmShards: int(r.w.active.Load()),
		Pulled:     r.w.pulled.Load(), Dropped: r.w.dropped.Load(), ReadThrough: r.w.fetched.Load(),
		DeltaShards: r.w.deltas.Load(), DeltaRefused: r.w.noDeltas.Load(),
		Pauses: r.pauses.Load(), Lapses: r.w.lapses.Load(),
		ReplicaWrites: r.replicated.Load(), ReplicaStaleEpochs: r.staleEpochs.Load(),
		Reverified: r.reverified.Load(),
	}
	t.HintMembers, t.HintShards, t.HandedBack = r.HintStats()
	t.Tombstones, _, t.TombstonesEvicted = r.tombs.Stats()
	return t
}

// ClusterStats lists Takeover, then PeerStats as one group of lines per
// member, for the memcached "stats cluster" command.
func (r *Router) ClusterStats() [][2]string {
	out := r.takeoverStats()
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

// takeoverStats lists Takeover as "stats cluster" lines.
func (r *Router) takeoverStats() [][2]string {
	t := r.Takeover()
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
// counters /metrics uses) and "stats ring" (server.RingInfo).
type Info struct {
	Node   *Node
	Router *Router
}

// RingStats answers "stats ring" for ring-aware clients.
func (c Info) RingStats() [][2]string { return c.Node.RingStats() }

// ClusterStats answers "stats cluster".
func (c Info) ClusterStats() [][2]string {
	return append(c.Node.ClusterStats(), c.Router.ClusterStats()...)
}
