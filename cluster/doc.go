// Package cluster keeps one node's view of the cluster: the members etcd
// lists (etcdsync), the ring of shards computed from them (ring), and each
// member's health as gossip sees it (gossip). etcd alone changes the ring;
// gossip only advises routing. The Router turns the view into the data
// path: the connection server's Cache, serving each key from its first
// reachable owner (the local store, or a peer.Client to that owner's peer
// port) and pushing the writes it serves to the key's other owners (repl).
// The router's own goroutine (Router.Run) applies each new view; a request
// decides its Route once, on the view applied last, and carries it to the
// end (route.go, view.go). The copies of a key converge to its newest
// write: the store's CAS is a hybrid logical clock, every copy made
// elsewhere (replicated, pulled, read through, handed back) is applied
// only over an older one, and a delete carries a version that is
// remembered for a while (versions.go, package tomb). What one owner wrote
// while another could not hear it moves by hand-back (hints.go) and by
// re-verifying shared shards when a member comes back (returns.go). A
// node restarted from its memory file pulls only what changed while it
// was down (restart.go).
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
// swapped atomically), so readers never lock and every node holding the same
// etcd revision holds the same ring.
package cluster
