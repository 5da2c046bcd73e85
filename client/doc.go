// Package client sends each gomemcache request straight to the shoal node
// that serves its key; it knows gomemcache and the ring, never a node's
// internals (etcd, gossip, forwarding).
//
// Data flow: a Selector asks any node "stats ring" (the membership the
// node's ring is built from: names, client addresses, shards, vnodes,
// replicas, epoch) and builds the same table with package ring, so client
// and nodes can never disagree on placement for one membership. PickServer
// then hashes the key (ring.Shard), takes its owners (ring.Owners) and
// returns the first owner not marked down: the primary while it answers,
// which serves the key with no hop. Run polls the ring every Config.Poll
// and at once after a connection error, and swaps in a new table when the
// epoch or the member list changes.
//
// Failures: Selector.Client dials through the selector, so a dial or I/O
// error on a node marks it down for Config.Retry. Keys it owns then go to
// their next owner (which serves them, as a node would route them), or to
// any other node, which forwards. The request that meets the failure
// fails; later ones take the fallback.
//
// Use:
//
//	sel, _ := client.New(client.Config{Seeds: []string{"10.0.0.1:11211"}})
//	_ = sel.Refresh(ctx)  // first ring, or PickServer uses the seeds
//	go sel.Run(ctx)       // keep it current until ctx ends
//	mc := sel.Client()    // a *memcache.Client; its API is unchanged
//
// gomemcache keeps MaxIdleConns (2 by default) idle connections per node;
// a program with many goroutines raises it to about their number, or
// connections are opened and closed per request.
package client
