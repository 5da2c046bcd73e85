package membership

import "strconv"

// RingStats lists what a client needs to compute placement exactly as
// this node does, for the memcached "stats ring" command: the epoch, the
// ring settings, then each member of the ring (View.Members: exactly the
// names the ring was built from, so members gossip has not seen yet are
// left out here too) with its client address. ring.New over these names
// and settings reproduces this node's table. The table changes with the
// epoch, and within one epoch when gossip first sees a member (ring_unseen
// drops, ring_members grows): a client compares the member list too.
// Before the first view only ring_epoch 0 is listed.
func (n *Node) RingStats() [][2]string {
	v := n.View()
	if v == nil {
		return [][2]string{{"ring_epoch", "0"}}
	}
	out := make([][2]string, 0, 6+len(v.Members))
	out = append(out,
		[2]string{"ring_epoch", strconv.FormatInt(v.Epoch, 10)},
		[2]string{"ring_unseen", strconv.Itoa(len(v.Unseen))},
		[2]string{"ring_shards", strconv.Itoa(v.Settings.Shards)},
		[2]string{"ring_vnodes", strconv.Itoa(v.Settings.VNodes)},
		[2]string{"ring_replicas", strconv.Itoa(v.Settings.Replicas)},
		[2]string{"ring_members", strconv.Itoa(len(v.Members))},
	)
	for _, m := range v.Members {
		out = append(out, [2]string{"ring_member:" + m.Name, m.ClientAddr})
	}
	return out
}
