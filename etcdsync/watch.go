package etcdsync

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var errWatchClosed = errors.New("etcdsync: watch channel closed")

// view is the watcher's working copy of the membership.
type view struct {
	members  map[string]Member
	created  map[string]int64 // per member: its record's create revision
	settings Settings
	rev      int64
}

func (v *view) snapshot() Snapshot {
	ms := slices.SortedFunc(maps.Values(v.members), func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return Snapshot{Members: ms, Settings: v.settings, Revision: v.rev}
}

// watch lists and follows the cluster's keys until ctx ends. adopted are
// the settings Run seeded or adopted; they stand in while /<prefix>/config
// is absent or unreadable.
func (s *Sync) watch(ctx context.Context, cli *clientv3.Client, adopted Settings) {
	var bo retry
	for ctx.Err() == nil {
		v, err := s.list(ctx, cli, adopted)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Log(ctx, bo.level(), "etcdsync: list members failed, retrying", "err", err)
				bo.wait(ctx)
			}
			continue
		}
		bo.reset()
		s.publish(v.snapshot())
		// The list's revision may be one the others never saw as an event
		// (a deletion before it, or another cluster's write): our own
		// rewrite gives every node a common revision.
		s.requestTouch()
		err = s.follow(ctx, cli, v)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("etcdsync: watch ended, listing again", "err", err, "rev", v.rev)
	}
}

// list reads every key of the cluster at one revision.
func (s *Sync) list(ctx context.Context, cli *clientv3.Client, adopted Settings) (*view, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	resp, err := cli.Get(rctx, s.keys.root, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	v := &view{members: make(map[string]Member, len(resp.Kvs)), created: make(map[string]int64, len(resp.Kvs)), settings: adopted, rev: resp.Header.Revision}
	for _, kv := range resp.Kvs {
		s.apply(v, mvccpb.PUT, kv)
	}
	s.forgetUnlisted(resp.Kvs)
	if _, ok := v.members[s.cfg.Self.Name]; !ok {
		s.ownRecordGone(v.rev)
	}
	s.log.Debug("etcdsync: listed", "rev", v.rev, "members", len(v.members))
	return v, nil
}

// follow watches from v.rev+1, publishing after every response, until the
// watch fails (compaction, lost leader, cancellation).
func (s *Sync) follow(ctx context.Context, cli *clientv3.Client, v *view) error {
	// WithRequireLeader: an etcd member cut off from its leader cancels the
	// watch instead of leaving it silently stale.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, s.keys.root, clientv3.WithPrefix(), clientv3.WithRev(v.rev+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if wr.Canceled {
			return errWatchClosed
		}
		changed := false
		for _, ev := range wr.Events {
			if s.apply(v, ev.Type, ev.Kv) {
				changed = true
				v.rev = max(v.rev, ev.Kv.ModRevision)
			}
		}
		if changed {
			s.publish(v.snapshot())
		}
	}
	return errWatchClosed
}

// apply applies one put or delete to v and reports whether it changed the
// cluster's settings or members. A refused record changes nothing (but
// drops the member whose record it replaced).
func (s *Sync) apply(v *view, typ mvccpb.Event_EventType, kv *mvccpb.KeyValue) bool {
	key := string(kv.Key)
	if key == s.keys.config {
		if typ == mvccpb.DELETE {
			s.log.Warn("etcdsync: settings deleted from etcd; keeping the last ones", "key", key)
			return false
		}
		return s.applyConfig(v, kv.Value)
	}
	name, ok := s.keys.memberName(key)
	if !ok {
		return false
	}
	if key == s.keys.self && (typ == mvccpb.DELETE || string(kv.Value) != s.selfValue) {
		s.ownRecordGone(kv.ModRevision)
	}
	if typ == mvccpb.DELETE {
		s.memberOK(key)
		delete(v.members, name)
		delete(v.created, name)
		return true
	}
	if key == s.keys.self && kv.Version == 1 && string(kv.Value) == s.selfValue {
		s.watchLapsed(v, kv.CreateRevision)
	}
	m, err := decodeMember(name, kv.Value)
	if err != nil {
		s.refuseMember(key, err)
		_, had := v.members[name]
		delete(v.members, name)
		delete(v.created, name)
		return had
	}
	s.memberOK(key)
	v.created[name] = kv.CreateRevision
	v.members[name] = m
	return true
}

// ownRecordGone handles our record seen deleted or rewritten by someone
// else at revision rev. If that is after our last write, the registration
// is lost: fence now rather than at the registrar's next etcd round trip.
// The registrar then finds out (by a touch) whether to re-register or
// whether it was superseded. A registration racing with this may be fenced
// needlessly; the touch unfences it.
func (s *Sync) ownRecordGone(rev int64) {
	if put := s.putRev.Load(); put != 0 && rev > put {
		s.validUntil.Store(0)
	}
	s.requestTouch()
}
