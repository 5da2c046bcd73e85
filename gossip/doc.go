// Package gossip detects failed peers quickly with hashicorp/memberlist and
// reports their health as advice for routing; it never decides membership.
//
// etcd decides who is a member. The caller (the glue that watches etcd)
// passes the listed nodes and their gossip addresses to SetPeers; gossip
// reports health only for those nodes, and a reconcile loop Joins any listed
// peer it does not see alive, because memberlist does not rejoin after a
// partition by itself. A node gossip sees but etcd does not list is ignored.
// This package must not know about etcd, the ring or shards.
//
// Data flow:
//
//	memberlist callbacks ──enqueue──▶ event loop ──▶ per-instance states
//	(join, leave, update,              │                 │
//	 probe ack, failed probe)          ▼                 ▼
//	                          Changed() notification   Health(node)
//	SetPeers ──▶ reconcile loop ──Join──▶ memberlist
//
// Seen reports whether a node was ever heard of alive (here or, through
// gossip, anywhere); Synced is closed once the first round of joins after
// SetPeers has reached the cluster or failed everywhere. The glue places
// in its ring only the nodes gossip has seen. A round joins its addresses
// in parallel, so listed addresses that never answer cost one TCP timeout
// per round, not one each.
//
// Every process joins memberlist under the name Node+"/"+Instance, so a
// restarted node is a new memberlist member; Health reports the newest
// incarnation, and the death of an older one does not hide it.
//
// memberlist reports joins, leaves and metadata updates as events, but has
// no event for suspicion. Suspect is therefore this node's own view: it is
// set when this node's probe of a peer fails (seen in memberlist's log
// output) and cleared by a successful probe ack, by a direct ping the
// reconcile loop sends to suspects, or by an alive event. Suspicions that
// other nodes gossip are not visible here. A death declared while this
// node still sees the incarnation alive is reported Suspect for a second
// first (deadGrace), and for as long after as the reconcile loop's direct
// pings of it are answered: a node back from a partition broadcasts the
// stale deaths it declared while cut off, and a suspicion raised during
// the cut that its subject never heard expires after the heal unrefuted;
// either would otherwise route around a node that answers.
//
// A listed peer with another SecretKey (or none where this node has one,
// or the reverse) or another Label can never be talked to: it stays
// Unknown. memberlist says so on every attempt, both ways; this package
// warns once per host on the receiving side (logging.go) and once per
// listed node on the joining side (reportMismatches), and keeps the rest
// at Debug.
package gossip
