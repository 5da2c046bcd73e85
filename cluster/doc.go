// Package cluster is a cluster node's data path: the Router, the
// connection server's Cache on a cluster node, serving each key from its
// first reachable owner (the local store, or a peer.Client to that owner's
// peer port) and pushing the writes it serves to the key's other owners
// (repl), and the PeerPort, which serves the peer port. It routes by the
// View package membership publishes.
//
// Its files, by job:
//
//   - routing: route.go (Router.route, the one place a request's owner is
//     decided, as a Route it carries to the end), member.go (another
//     member: its client and health), router.go, forward.go,
//     multiget.go (with hold.go, the node-wide bound on the other
//     owners' values multi-gets hold), async.go, async_write.go,
//     local.go; view.go applies
//     each new View on the router's own goroutine (Router.Run), never on
//     a request's.
//   - takeover, a shard becoming this node's to serve (warm-up, warm
//     restart, recovery from a pause, a lapse or a co-owner's return, the
//     handoff before leaving), is package takeover's: the router holds one
//     takeover.Takeover (Router.tk) and asks it what its requests and
//     views need; takeover.go is the router's side of it (its Config, and
//     takeoverHost, the router as takeover.Host), handoff.go delegates
//     Router.Handoff.
//   - pushing writes: replicate.go, the pusher, which sends the writes
//     this node serves to the keys' other owners (repl) with their epoch
//     and a per-shard sequence, and hints.go, its hand-back of what a
//     member missed.
//   - the peer port: peerport.go, all of PeerPort (forwarded requests,
//     replicated writes, replica-level reads, shard dumps; its Start
//     and Inline).
//   - versions: takeover.Versions (takeover/versions.go, shared with
//     the takeover) and replicate.go. The copies of a key converge to its
//     newest write: the store's CAS is a hybrid logical clock, every copy
//     made elsewhere (replicated, pulled, read through, handed back) is
//     applied only over an older one, and a delete carries a version that
//     is remembered for a while (package tomb).
//   - stats.go: the router's counters for "stats cluster" and /metrics,
//     and Info, which joins them to the view's.
package cluster
