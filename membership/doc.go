// Package membership keeps one node's view of the cluster: the members
// etcd lists (etcdsync), the ring of shards computed from them (ring), and
// each member's health as gossip sees it (gossip). etcd alone changes the
// ring; gossip only advises routing. Node.Run registers this node and
// watches; the View it publishes is what cluster.Router routes by.
//
// Data flows one way:
//
//	etcd ──► etcdsync.Sync ─┬─► ring.New (settings, names gossip has Seen, revision) ─► View
//	                        └─► gossip.SetPeers (whom to join)
//	memberlist ──► gossip.Gossip ──► Health(node), Seen(node), Synced
//
// The ring holds the members etcd lists that gossip has seen alive at
// least once (and this node): a record in etcd for a node that never
// gossiped is View.Unseen, not an owner (see Node.placed). A member once
// seen stays in the ring when gossip calls it dead; only etcd removes it.
// Node.RingStats serves exactly those members, with their client addresses
// and the ring settings, to ring-aware clients ("stats ring", client/).
//
// Every membership change in etcd produces a new View (an immutable value
// swapped atomically), so readers never lock and every node holding the
// same etcd revision holds the same ring. Status is the snapshot of the
// view that feeds "stats cluster", /metrics and /cluster (status.go).
package membership
