// Package takeover is how a cluster node takes over shards, and gives
// them up: the state and the work between "this node owns shard s now"
// and "what it serves of s is what the others would serve".
//
// What it does, by file:
//
//   - warm.go, warm_pull.go: warm-up. A shard this node becomes an owner
//     of warms: what may be stale is dropped, each key is read through
//     from a source before it is served or changed (Settle, Own; a write
//     that depends on an item no source vouches for fails with
//     ErrUnvouched), replicated writes are ordered against that (Replica,
//     ReplicaNewer), and a worker (RunWarm) pulls the shard from a source
//     (the peer-only sd dump) until it is this node's.
//   - restart.go: a warm restart pulls only what changed since the save.
//   - pause.go: the heartbeat (Heartbeat) and Awake notice that the
//     process was paused, and recover: connections dropped (OnPause),
//     the replication queue discarded, every owned shard wiped and pulled
//     again.
//   - lapse.go: this node's registration lapsed while others stayed
//     (CheckLapse): what they hold is dropped and pulled again, but what
//     this node wrote since it was cut off.
//   - returns.go: a co-owner usable again after a cut (NoticeReturns):
//     the shards shared with it are re-verified from it (merge mode).
//   - handoff.go: before this node leaves, each owned shard is pushed to
//     the members that own it once it is gone (Handoff).
//   - versions.go: the store's versioned writes (Versions), shared with
//     the router: a copy made elsewhere lands only over an older item and
//     never over a newer delete, and deletes are remembered (package
//     tomb).
//   - operate.go: steps a host may run by hand, and what it may look
//     into.
//
// What it asks of its host (cluster's Router) is Host, and nothing else:
// the view requests route by now with its other members (PeerView, each
// a Source: name, peer client, Usable, Failed), the view lock (held while
// a view is applied and while takeover recovers), and Owe (a member
// became an owner of a shard and is owed this node's writes of it). The
// host tells it when its Run starts (Begin) and of each view it applies
// (Transition, under the view lock, then Kick), runs its workers
// (RunWarm, Heartbeat), calls CheckLapse and NoticeReturns on its ticks,
// and asks it, for each request, on the key's Placement (its shard in
// the request's view): Awake, Recovering, Warming, Settle, Own, Replica,
// ReplicaNewer, StaleEpoch. Its settings are its own (Config): the node's
// name, logger, store, registration (its lapses), replicator, versions
// and timings.
//
// What it must not know: the router, routes and requests (it imports
// neither shoal/cluster nor shoal/server), how the router picks an owner
// or forwards, the members' down marks and probes (a Source's Usable and
// Failed), etcd and gossip (a Registration's lapses, a View). Its
// counters (Counters) are the router's to report.
package takeover
