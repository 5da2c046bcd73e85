package cluster

import "context"

// Handoff pushes, before this node leaves the cluster (SIGTERM), every
// item it holds in a shard it owns to each member that will own the shard
// once this node is gone and does not own it now, as replicated writes;
// it returns the items pushed and those that failed, when all are sent or
// ctx ends. See takeover.Takeover.Handoff.
func (r *Router) Handoff(ctx context.Context) (sent, failed uint64) { return r.tk.Handoff(ctx) }
