package etcdsync

import (
	"fmt"
	"hash/fnv"

	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Rejections: etcd is validated, not trusted. Anyone who can write to the
// cluster's prefix could otherwise make every node allocate tables sized
// by a shard count of their choosing, or fill the ring with members that
// do not exist. Each refusal is logged once and counted.

// Rejections counts what this node refused to take from etcd.
type Rejections struct {
	// Config counts the values of /<prefix>/config refused: unreadable,
	// out of bounds (Settings.Validate), failing Config.CheckSettings, or
	// changing Shards, which is fixed when the cluster is created. The same
	// value refused again (a relist, a rewrite) is not counted again.
	Config uint64
	// ConfigRefused: the settings etcd holds now are refused; this node
	// keeps the ones it has (at the first join: its own Config.Settings).
	ConfigRefused bool
	// Members counts member records refused as unreadable or invalid
	// (checkMember): once each time a key's record turns bad.
	Members uint64
	// MembersIgnored is the number of member keys whose record is refused
	// now; they are left out of every Snapshot.
	MembersIgnored int
}

// Rejections returns the counters. Safe for concurrent use.
func (s *Sync) Rejections() Rejections {
	return Rejections{
		Config:         s.rejectedConfig.Load(),
		ConfigRefused:  s.refusingConfig.Load(),
		Members:        s.rejectedMembers.Load(),
		MembersIgnored: int(s.ignoredMembers.Load()),
	}
}

// applyConfig takes a put of the settings into v, unless they are refused,
// and reports whether v changed.
func (s *Sync) applyConfig(v *view, val []byte) bool {
	st, err := decodeSettings(val, s.cfg.CheckSettings)
	if err == nil && st.Shards != v.settings.Shards {
		err = fmt.Errorf("shard count %d is not the cluster's %d, fixed when it was created", st.Shards, v.settings.Shards)
	}
	if err != nil {
		s.refuseConfig(val, err, v.settings)
		return false
	}
	s.refusingConfig.Store(false)
	s.badConfig = 0
	changed := v.settings != st
	v.settings = st
	return changed
}

// refuseConfig records that the settings value val was refused for err,
// keeping kept; a value refused just before is neither logged nor
// counted again.
func (s *Sync) refuseConfig(val []byte, err error, kept Settings) {
	s.refusingConfig.Store(true)
	h := fnv.New64a()
	h.Write(val)
	sum := h.Sum64() | 1 // never 0, which means none
	if sum == s.badConfig {
		return
	}
	s.badConfig = sum
	s.rejectedConfig.Add(1)
	s.log.Error("etcdsync: refusing the cluster settings in etcd; keeping this node's",
		"key", s.keys.config, "err", err, "keeping", kept)
}

// refuseMember records that the record of member key was refused for err;
// it is logged and counted once until the key is deleted or holds a valid
// record again.
func (s *Sync) refuseMember(key string, err error) {
	if _, ok := s.badMembers[key]; ok {
		return
	}
	s.badMembers[key] = struct{}{}
	s.ignoredMembers.Store(int64(len(s.badMembers)))
	s.rejectedMembers.Add(1)
	s.log.Warn("etcdsync: ignoring a member record", "key", key, "err", err)
}

// memberOK forgets that the record of key was refused (valid or deleted now).
func (s *Sync) memberOK(key string) {
	if _, ok := s.badMembers[key]; ok {
		delete(s.badMembers, key)
		s.ignoredMembers.Store(int64(len(s.badMembers)))
	}
}

// forgetUnlisted forgets the refused keys a list did not return: they were
// deleted while no watch was running.
func (s *Sync) forgetUnlisted(kvs []*mvccpb.KeyValue) {
	if len(s.badMembers) == 0 {
		return
	}
	listed := make(map[string]struct{}, len(kvs))
	for _, kv := range kvs {
		listed[string(kv.Key)] = struct{}{}
	}
	for key := range s.badMembers {
		if _, ok := listed[key]; !ok {
			s.memberOK(key)
		}
	}
}
