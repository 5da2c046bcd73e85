package takeover

import (
	"context"
	"slices"
	"time"
)

// Pause detection: a node that stopped running for a while (SIGSTOP, a VM
// freeze, a long stall) finds, when it runs again, that the others may have
// failed its shards over and written them elsewhere, and that its sockets
// hold requests their senders gave up on and sent to another owner. Both
// would make it serve or write stale values. So before any request, the
// router compares a monotonic clock with the last tick of its heartbeat:
// a gap longer than PauseAfter means "I was away". The router then, before
// the request that noticed runs (on a goroutine, never an event loop):
//
//   - runs what OnPause registered (cluster's Router.RegisterOnPause: package node closes every
//     peer connection: what they still buffer was sent before the pause,
//     and its senders have failed over) and discards the replication
//     queue (it predates what the others took meanwhile);
//   - puts every shard it owns into warm-up with its local items dropped,
//     pulling them again from the owners that stood in (warm.go), and
//     marks the shards it does not own as possibly stale.
//
// The request that noticed cannot tell whether it was sent before the
// pause or after the resume (the heartbeat may not have run yet when the
// first request is read). A client's request runs after the recovery. On
// the peer port, a forwarded read runs after it too (it changes nothing,
// and reads through from the owners that stood in); a forwarded write is
// refused with ErrPaused, and its sender, if it still waits for the reply
// (so it has not given up and written elsewhere), asks again (walk), now
// served. Neither is seen by the client as an error or a miss.

// TickEvery is how often the heartbeat proves the process is running.
const TickEvery = 100 * time.Millisecond

// Heartbeat ticks for pause detection until ctx ends, on a goroutine that
// does nothing else. Run's own loop applies views, closes the clients of
// members that left and re-verifies shards; any of that may take longer
// than PauseAfter (closing the client of a member cut off waits out its
// dial), and a tick late for that reason is not a pause: e2e/history saw
// both healthy nodes of a cluster "recover" from a 1.02 s gap right after
// a partition healed, dropping every shard they owned at once.
func (t *Takeover) Heartbeat(ctx context.Context) {
	t.tick.Store(t.mono())
	tk := time.NewTicker(TickEvery)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if t.Awake() {
			t.tick.Store(t.mono())
		}
	}
}

// mono is nanoseconds on the monotonic clock since the router started.
func (t *Takeover) mono() int64 { return int64(time.Since(t.born)) + 1 }

// Awake reports whether the process ran without a pause since the last
// tick. When it did not, it recovers (once, whichever caller notices
// first) and reports false: the caller must not run its request.
func (t *Takeover) Awake() bool {
	t.CheckLapse()
	last := t.tick.Load()
	if last == 0 {
		return true // Run has not started: no ticks to compare with
	}
	now := t.mono()
	if now-last < int64(t.PauseAfter) {
		return true
	}
	t.pauseMu.Lock()
	defer t.pauseMu.Unlock()
	if t.tick.Load() != last {
		return false // another caller recovered
	}
	t.recoverFromPause(time.Duration(now - last))
	t.tick.Store(t.mono())
	return false
}

// recoverFromPause drops and re-pulls every shard this node owns; t.pauseMu
// is held.
func (t *Takeover) recoverFromPause(gap time.Duration) {
	t.pauses.Add(1)
	t.Log.Warn("process was paused; dropping connections and re-pulling owned shards", "gap", gap)
	for _, f := range t.onPause {
		f()
	}
	if t.Repl != nil {
		t.Repl.Discard() // it predates what the others took meanwhile
	}
	v := t.h.Current().View()
	if v == nil || v.Ring == nil {
		return
	}
	t.h.ViewLock().Lock()
	defer t.h.ViewLock().Unlock()
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init(v.Ring.NumShards())
	if len(w.flags) != v.Ring.NumShards() {
		return
	}
	without := t.ringWithout(v)
	var cs []claim
	for s := range v.Ring.NumShards() {
		owners := v.Ring.Owners(s)
		if !slices.Contains(owners, t.Self) {
			continue
		}
		src := others(nil, owners, t.Self)
		if without != nil {
			src = others(src, without.Owners(s), t.Self)
		}
		cs = append(cs, claim{shard: s, src: src, drop: true})
	}
	clear(w.fresh) // what was settled before the pause may be stale too
	w.keepFrom, w.keptFrom = 0, 0
	w.dropOthers = true
	w.start(cs)
}

// pausedNow reports, without recovering, whether a pause would be noticed
// now (awake would report false).
func (t *Takeover) pausedNow() bool {
	last := t.tick.Load()
	return last != 0 && t.mono()-last >= int64(t.PauseAfter)
}
