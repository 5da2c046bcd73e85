package etcdsync

import (
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Lapses: etcd deleted this node's record (its lease expired: a partition,
// a long stall) while other members stayed registered. Their watches
// showed a cluster without this node, which served this node's shards
// elsewhere meanwhile, so what this node holds may be stale: values
// overwritten, keys deleted. The registrar finds out when it claims its
// name again and finds the record gone; it cannot tell sooner, as a node
// cut off from etcd cannot tell an etcd outage from its own partition.

// Lapse describes the times this node re-registered after its record had
// been deleted.
type Lapse struct {
	// Count is how many times so far; 0: never.
	Count uint64
	// Stayed are the other members registered throughout the last one,
	// sorted: their record was in the last view this node saw while it
	// was unfenced (so before its own record expired) and was still there,
	// never deleted, when this node registered again. They were in every
	// view the others had without this node. Empty after an etcd outage
	// long enough to expire every lease: nobody stayed.
	Stayed []string
}

// Lapses returns Lapse().Count; cheap enough for every request.
func (s *Sync) Lapses() uint64 { return s.lapses.Load() }

// Lapse returns the latest lapse.
func (s *Sync) Lapse() Lapse {
	s.lapseMu.Lock()
	defer s.lapseMu.Unlock()
	return Lapse{Count: s.lapses.Load(), Stayed: slices.Clone(s.stayed)}
}

// lapsed records a lapse if this process had registered before: the claim
// that just re-created its record read members, the member records at
// that revision.
func (s *Sync) lapsed(members []*mvccpb.KeyValue) {
	if s.putRev.Load() == 0 {
		return // the first registration of this process
	}
	good := s.goodRev.Load()
	var stayed []string
	for _, kv := range members {
		name, ok := s.keys.memberName(string(kv.Key))
		if ok && name != s.cfg.Self.Name && kv.CreateRevision <= good {
			stayed = append(stayed, name)
		}
	}
	slices.Sort(stayed)
	s.lapseMu.Lock()
	s.stayed = stayed
	s.lapses.Add(1)
	s.lapseMu.Unlock()
	s.log.Warn("etcdsync: registration had lapsed: the cluster went on without this node", "last_good_view_rev", good, "stayed", stayed)
}
