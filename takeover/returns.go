package takeover

import (
	"slices"
	"time"

	"shoal/membership"
)

// Returns: re-verifying shards when a co-owner comes back.
//
// While this node could not reach a member (gossip called it dead, or its
// requests timed out and it stayed marked down), each side may have served
// the other's keys: this node stood in for the member's shards, and the
// member, if clients reached it, for this node's. What the member wrote is
// handed back (cluster/hints.go), but only once it sees this node again, and until
// it lands this node would serve its own, older copy. So when a member
// becomes usable again after being unusable for longer than one down mark
// (a blip of one timeout is not a cut), every shard both own warms here
// again from it, in merge mode: its newer copies are taken, read through
// before a key is served and pulled in the background, and nothing it
// lacks is dropped (it may have dropped its items after a pause). See
// warm.go; the cost is a pull of the shared shards per return.

// Returns tracks, per member, since when it has been unusable; the
// router's Run keeps one for NoticeReturns, on its goroutine only. Its
// zero value is ready.
type Returns struct {
	awaySince map[string]time.Time
	// wholeAt: the last tick at which every member was usable (unix ms <<
	// 16, comparable with a CAS); wasWhole: whether the last tick was
	// one. Each cut publishes wholeAt as Takeover.cutAt.
	wholeAt  uint64
	wasWhole bool
}

// NoticeReturns is called at each of Run's ticks: it starts re-verifying
// the shards shared with each member that is usable again after being
// unusable longer than DownFor plus a tick.
func (t *Takeover) NoticeReturns(rs *Returns, now time.Time) {
	ps := t.h.Current()
	v := ps.View()
	if v == nil || v.Ring == nil {
		return
	}
	if rs.awaySince == nil {
		rs.awaySince = map[string]time.Time{}
	}
	var back []string
	whole := true
	for _, mem := range v.Members {
		name := mem.Name
		m := ps.Peer(name)
		if m == nil {
			continue // this node, or a member without a client
		}
		since, away := rs.awaySince[name]
		up := m.Usable()
		whole = whole && up
		switch {
		case !up && !away:
			rs.awaySince[name] = now
		case up && away:
			delete(rs.awaySince, name)
			if now.Sub(since) > t.DownFor+TickEvery {
				back = append(back, name)
			}
		}
	}
	if whole {
		rs.wholeAt = uint64(now.UnixMilli()) << 16
	} else if rs.wasWhole {
		t.cutAt.Store(rs.wholeAt)
	}
	rs.wasWhole = whole
	for name := range rs.awaySince {
		if ps.Peer(name) == nil {
			delete(rs.awaySince, name) // left the view: warm-up covers its return
		}
	}
	if len(back) > 0 {
		t.reconnect(ps, back)
		t.Reverify(v, back)
	}
}

// reconnect breaks this node's connections to the members in back, the
// router's and the replicator's: a connection from before a cut can stay
// silent for seconds after the heal (TCP's retransmission backoff), each
// request on it timing out and marking the member down again.
func (t *Takeover) reconnect(ps PeerView, back []string) {
	for _, name := range back {
		if m := ps.Peer(name); m != nil {
			m.Client().Reset()
		}
		if t.Repl != nil {
			t.Repl.Reset(name)
		}
	}
}

// Reverify starts merge warm-ups of the shards this node shares with the
// members in back, from them: NoticeReturns does for the members it sees
// come back; a host that learns of a return otherwise may too. It takes
// the view lock.
func (t *Takeover) Reverify(v *membership.View, back []string) {
	t.h.ViewLock().Lock()
	defer t.h.ViewLock().Unlock()
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	n := v.Ring.NumShards()
	w.init(n)
	if len(w.flags) != n || !t.running {
		return
	}
	var cs []claim
	for s := range n {
		owners := v.Ring.Owners(s)
		if !slices.Contains(owners, t.Self) {
			continue
		}
		var src []string
		for _, b := range back {
			if slices.Contains(owners, b) {
				src = append(src, b)
			}
		}
		if len(src) > 0 {
			cs = append(cs, claim{shard: s, src: src, merge: true})
		}
	}
	t.Log.Info("members back: re-verifying the shards shared with them", "members", back, "shards", len(cs))
	t.reverified.Add(uint64(len(cs)))
	w.start(cs)
}
