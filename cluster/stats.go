package cluster

import (
	"strconv"
)

// ClusterStats lists the view as name/value pairs for the memcached
// "stats cluster" command: the epoch, this node, then one group of lines
// per member.
func (n *Node) ClusterStats() [][2]string {
	out := [][2]string{
		{"cluster_node", n.Name()},
		{"cluster_fenced", boolNum(n.Fenced())},
	}
	v := n.View()
	if v == nil {
		return append(out, [2]string{"cluster_epoch", "0"})
	}
	out = append(out,
		[2]string{"cluster_epoch", strconv.FormatInt(v.Epoch, 10)},
		[2]string{"cluster_members", strconv.Itoa(len(v.Members))},
		[2]string{"cluster_shards", strconv.Itoa(v.Settings.Shards)},
		[2]string{"cluster_replicas", strconv.Itoa(v.Settings.Replicas)},
	)
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
	for _, m := range v.Members {
		p := "member:" + m.Name + ":"
		out = append(out,
			[2]string{p + "addr", m.ClientAddr},
			[2]string{p + "health", n.Health(m.Name).String()},
			[2]string{p + "primary_shards", strconv.Itoa(primaries[m.Name])},
			[2]string{p + "owned_shards", strconv.Itoa(owned[m.Name])},
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
