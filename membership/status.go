package membership

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
