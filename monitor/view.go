package monitor

import (
	"shoal/gossip"
)

// View is the /cluster JSON: this node's view of the cluster and its own
// counters. A standalone node reports itself as the only member.
type View struct {
	Node     string       `json:"node"`
	Version  string       `json:"version"`
	Mode     string       `json:"mode"` // "cluster" or "standalone"
	Epoch    int64        `json:"epoch"`
	Fenced   bool         `json:"fenced"`
	Shards   int          `json:"shards"`
	Replicas int          `json:"replicas"`
	Stats    NodeStats    `json:"stats"`
	Members  []MemberView `json:"members"`
	// MembersUnseen: members etcd lists that gossip has never seen alive,
	// left out of the ring. Cluster only, like Rejected.
	MembersUnseen int           `json:"members_unseen"`
	Rejected      *RejectedView `json:"rejected,omitempty"`
	// Peers: the per-peer forwarding and replication counters; absent on
	// a standalone node.
	Peers []PeerView `json:"peers,omitempty"`
}

// NodeStats are this node's headline counters, with memcached's names.
type NodeStats struct {
	UptimeSeconds   int64   `json:"uptime"`
	CurrConnections int64   `json:"curr_connections"`
	CurrItems       int64   `json:"curr_items"`
	Bytes           int64   `json:"bytes"`
	LimitMaxbytes   int64   `json:"limit_maxbytes"`
	GetHits         int64   `json:"get_hits"`
	GetMisses       int64   `json:"get_misses"`
	Evictions       int64   `json:"evictions"`
	Reclaimed       int64   `json:"reclaimed"`
	HitRatio        float64 `json:"hit_ratio"` // get_hits / (get_hits + get_misses); 0 before any get
}

// MemberView is one member as this node sees it.
type MemberView struct {
	Name          string `json:"name"`
	Addr          string `json:"addr,omitempty"`
	Self          bool   `json:"self"`
	Health        string `json:"health"` // gossip: alive, suspect, dead, unknown
	Etcd          bool   `json:"etcd"`   // listed by etcd with a live lease
	PrimaryShards int    `json:"primary_shards"`
	OwnedShards   int    `json:"owned_shards"`
}

// RejectedView is what this node refused to take from etcd.
type RejectedView struct {
	Config         uint64 `json:"config"`          // settings values refused
	ConfigRefused  bool   `json:"config_refused"`  // the settings in etcd now are refused
	Members        uint64 `json:"members"`         // member records refused
	MembersIgnored int    `json:"members_ignored"` // member records ignored now
}

// PeerView is one peer's forwarding and replication state.
type PeerView struct {
	Peer            string  `json:"peer"`
	Forwarded       uint64  `json:"forwarded"`
	ForwardFailures uint64  `json:"forward_failures"`
	ReplLagSeconds  float64 `json:"repl_lag_seconds"`
	ReplQueueDrops  uint64  `json:"repl_queue_drops"`
}

// View returns the current view from fresh snapshots.
func (m *Monitor) View() View {
	snap := m.cfg.Stats.Stats()
	hits, misses := snap.Commands["get_hits"], snap.Commands["get_misses"]
	v := View{
		Node:    m.cfg.Node,
		Version: m.cfg.Version,
		Mode:    "standalone",
		Stats: NodeStats{
			UptimeSeconds:   int64(snap.Uptime.Seconds()),
			CurrConnections: snap.CurrConnections,
			CurrItems:       snap.Store.CurrItems,
			Bytes:           snap.Store.Bytes,
			LimitMaxbytes:   snap.Store.LimitMaxbytes,
			GetHits:         hits,
			GetMisses:       misses,
			Evictions:       snap.Store.Evictions,
			Reclaimed:       snap.Store.Reclaimed,
		},
	}
	if hits+misses > 0 {
		v.Stats.HitRatio = float64(hits) / float64(hits+misses)
	}
	if m.cfg.Cluster == nil {
		v.Members = []MemberView{{Name: m.cfg.Node, Self: true, Health: gossip.Alive.String()}}
	} else {
		st := m.cfg.Cluster.Status()
		v.Mode, v.Node = "cluster", st.Node
		v.Epoch, v.Fenced, v.Shards, v.Replicas = st.Epoch, st.Fenced, st.Shards, st.Replicas
		v.MembersUnseen = st.Unseen
		v.Rejected = &RejectedView{
			Config: st.Rejected.Config, ConfigRefused: st.Rejected.ConfigRefused,
			Members: st.Rejected.Members, MembersIgnored: st.Rejected.MembersIgnored,
		}
		v.Members = make([]MemberView, len(st.Members))
		for i, mb := range st.Members {
			v.Members[i] = MemberView{
				Name: mb.Name, Addr: mb.Addr, Self: mb.Name == st.Node,
				Health: mb.Health.String(), Etcd: true,
				PrimaryShards: mb.PrimaryShards, OwnedShards: mb.OwnedShards,
			}
		}
	}
	if m.cfg.Peers != nil {
		for _, p := range m.cfg.Peers.PeerStats() {
			v.Peers = append(v.Peers, PeerView{
				Peer: p.Peer, Forwarded: p.Forwarded, ForwardFailures: p.Failures,
				ReplLagSeconds: p.ReplLag.Seconds(), ReplQueueDrops: p.ReplQueueDrops,
			})
		}
	}
	return v
}
