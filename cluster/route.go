package cluster

import (
	"slices"

	"shoal/membership"
	"shoal/repl"
	"shoal/takeover"
)

// Route is where one request on one key goes: the key's shard and owners
// in one view, and which owner serves it. Router.route decides it once per
// request, from the view the router's own goroutine applied last (view.go);
// the request carries it, as a value, through forwarding, failover to the
// next owner, the local store operation and replication, so every step
// sees the same view and the key is hashed once.
type Route struct {
	ps     *peerSet // the view and its members' clients, applied together
	shard  int
	owners []string // in ring order; empty without a ring or members
	// at is the index in owners of the owner that serves: the first one
	// that is this node or is not skipped as down or dead. len(owners)
	// when none is left.
	at int
	// local: this node serves the request (it is owners[at], or there is
	// no owner to route to).
	local bool
}

// route decides where a request on key goes in the current view.
func (r *Router) route(key []byte) Route { return r.routeIn(r.peers.Load(), key) }

// routeIn decides where a request on key goes in ps's view: a request on
// many keys loads the view once and routes each key in it.
func (r *Router) routeIn(ps *peerSet, key []byte) Route {
	rt := Route{ps: ps}
	if v := ps.view; v != nil && v.Ring != nil {
		rt.shard = v.Ring.Shard(key)
		rt.owners = v.Ring.Owners(rt.shard)
	}
	r.moveTo(&rt, 0)
	return rt
}

// routeHere is the route of a request forwarded to this node (PeerPort): the sender
// chose this node to serve it, skipping the owners before it as down or
// dead, so it is served here as by the owner that stands in for them,
// and what it writes is pushed to every other owner, those skipped included,
// even when this node sees them usable. Routed by this node's own view
// instead, a stand-in that still saw the primary alive (one gossip had
// just marked dead on the sender, e2e/history seed 20) stored the write
// without pushing it anywhere, and the primary kept its older copy for
// good.
//
// owner is false when this node is not one of the key's owners in its
// own view (or has no view yet): its view and the sender's disagree. This
// node has just started or come back and not yet applied the view that
// made it an owner, or the sender has not yet applied the one that took
// the key away. A write served here then would be pushed to nobody, and
// the owners would never hold it (found reading the code for the stale
// reads of e2e/history seed 24; a logged run of 50 rolling restarts did
// not hit it, so it is not known to have caused them); PeerPort refuses
// it (ErrNotOwner) and the sender passes it on to the next owner.
func (r *Router) routeHere(key []byte) (rt Route, owner bool) {
	rt = r.route(key)
	i := slices.Index(rt.owners, r.self)
	if i < 0 {
		return rt, false
	}
	rt.at, rt.local = i, true
	return rt, true
}

// moveTo makes the serving owner of rt the first from index i on that is
// this node or may take a request (usable). This node is never skipped: a
// request that reaches it is served here.
func (r *Router) moveTo(rt *Route, i int) {
	for ; i < len(rt.owners); i++ {
		name := rt.owners[i]
		if name == r.self || usable(rt.ps.get(name)) {
			break
		}
	}
	rt.at = i
	rt.local = len(rt.owners) == 0 || (i < len(rt.owners) && rt.owners[i] == r.self)
}

// next moves rt past its serving owner, which did not answer, to the next
// owner that serves.
func (r *Router) next(rt *Route) { r.moveTo(rt, rt.at+1) }

// View is the view rt was decided on; nil before the first.
func (rt *Route) View() *membership.View { return rt.ps.view }

// placed is rt as takeover sees it: its shard (-1 without owners) in its
// view.
func (rt *Route) placed() takeover.Placement {
	if len(rt.owners) == 0 {
		return takeover.Placement{Shard: -1, Peers: rt.ps}
	}
	return takeover.Placement{Shard: rt.shard, Peers: rt.ps}
}

// Local reports whether this node serves the request: it is the serving
// owner, or there is no ring (or no member) to route by.
func (rt *Route) Local() bool { return rt.local }

// member is the serving owner's client; nil when the request is served
// here or no owner is left.
func (rt *Route) member() *member {
	if rt.local || rt.at >= len(rt.owners) {
		return nil
	}
	return rt.ps.get(rt.owners[rt.at])
}

// primary reports whether this node serves the key as the owner whose
// writes go to the others: it is an owner, and every owner before it is
// skipped. Only then are its local writes replicated.
func (rt *Route) primary() bool { return rt.local && len(rt.owners) > 0 }

// targets is the key's other owners that have a client in rt's view: the
// replicas a write this node serves (primary) is pushed to. It is computed
// once per view and shard (peerSet.targets), shared: not to be modified.
// When this node serves as primary, owners[at] is this node, which has no
// client, so these are the owners but the serving one.
func (rt *Route) targets() []repl.Target {
	if rt.shard < len(rt.ps.targets) {
		return rt.ps.targets[rt.shard]
	}
	return nil
}
