package cluster

import "context"

// Handoff pushes, before this node leaves the cluster, every item it holds
// in a shard it owns to each member that will own the shard once this
// node is gone and does not own it now, so that leaving loses nothing even
// with one replica, and the new owners warm up from a copy (package takeover) rather
// than from nothing. The items travel as replicated writes (with their CAS
// and this view's epoch). Handoff returns the items pushed and those that
// failed, when all are sent or ctx ends (takeover.Takeover.Handoff).
func (r *Router) Handoff(ctx context.Context) (sent, failed uint64) { return r.tk.Handoff(ctx) }
