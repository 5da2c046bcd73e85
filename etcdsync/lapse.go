package etcdsync

import (
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Lapses: etcd deleted this node's record (its lease expired: a partition,
// a long stall) while other members stayed registered. Their watches
// showed a cluster without this node, which served this node's shards
// elsewhere meanwhile, so what this node holds may be stale: values
// overwritten, keys deleted. This node finds out when its registrar claims
// its name again and finds the record gone, or when its watcher sees the
// record created again, whichever comes first; it cannot tell sooner, as a
// node cut off from etcd cannot tell an etcd outage from its own partition.

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
	// Since is when etcd last answered a keepalive of the lease this node
	// lost before the lapse (zero if unknown): the cut that made the lease
	// expire began after it, so whatever this node holds with a newer
	// version it wrote or took since then, not before.
	Since time.Time
}

// Lapses returns Lapse().Count; cheap enough for every request.
func (s *Sync) Lapses() uint64 { return s.lapses.Load() }

// Lapse returns the latest lapse.
func (s *Sync) Lapse() Lapse {
	s.lapseMu.Lock()
	defer s.lapseMu.Unlock()
	return Lapse{Count: s.lapses.Load(), Stayed: slices.Clone(s.stayed), Since: s.lapseSince}
}

// claimLapsed records the lapse that the claim re-creating this node's
// record at revision rev found; members are the member records it read at
// that revision.
func (s *Sync) claimLapsed(rev int64, members []*mvccpb.KeyValue) {
	good := s.goodRev.Load()
	var stayed []string
	for _, kv := range members {
		name, ok := s.keys.memberName(string(kv.Key))
		if ok && name != s.cfg.Self.Name && kv.CreateRevision <= good {
			stayed = append(stayed, name)
		}
	}
	s.lapsed(rev, stayed)
}

// watchLapsed records the lapse that the watcher found: this node's record
// re-created at revision rev, v the members before it. The watcher may see
// the record before the registrar sees its claim's answer; recording the
// lapse before publishing the view means that whoever sees this node back
// in a view also sees the lapse.
func (s *Sync) watchLapsed(v *view, rev int64) {
	first := s.firstRev.Load()
	if first == 0 || rev <= first {
		return // this process's first registration
	}
	good := s.goodRev.Load()
	var stayed []string
	for name, created := range v.created {
		if name != s.cfg.Self.Name && created <= good {
			stayed = append(stayed, name)
		}
	}
	s.lapsed(rev, stayed)
}

// lapsed records the lapse that ended with this node's record re-created
// at revision rev, once whichever of the registrar and the watcher sees it
// first.
func (s *Sync) lapsed(rev int64, stayed []string) {
	slices.Sort(stayed)
	s.lapseMu.Lock()
	if rev <= s.lapseRev {
		s.lapseMu.Unlock()
		return
	}
	s.lapseRev = rev
	s.stayed = stayed
	s.lapseSince = time.Time{}
	if ack := s.fencedAck.Load(); ack != 0 {
		s.lapseSince = s.start.Add(time.Duration(ack))
	}
	s.lapses.Add(1)
	s.lapseMu.Unlock()
	s.log.Warn("etcdsync: registration had lapsed: the cluster went on without this node", "rev", rev, "last_good_view_rev", s.goodRev.Load(), "stayed", stayed)
}
