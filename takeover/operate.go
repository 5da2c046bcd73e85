package takeover

import (
	"context"
	"time"

	"shoal/membership"
)

// Besides its requests and views (takeover.go), a host may look into a
// takeover and run some of its steps by hand: what settle waits for
// (SettleWait, SettleGiveUp), when the heartbeat last ran (LastTick), a
// pause or a cut it learned of by other means than the heartbeat and
// NoticeReturns (NotePause, SawCut), a lazy re-verification of shards
// (Suspect, Trust, Wiped) and a pull now (Pull). The cluster's tests
// drive the takeover through them; each is a step the takeover also
// takes on its own.

// SettleGiveUp returns when Settle stops waiting for source name, silent
// as a source of a wiped shard (w.unreached: per member, shared by the
// keys); zero when it is not waiting for it.
func (t *Takeover) SettleGiveUp(name string) time.Time {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	return t.w.unreached[name]
}

// LastTick returns when the heartbeat last proved the process ran; zero
// before its first tick (the router's Run has not started).
func (t *Takeover) LastTick() time.Time {
	last := t.tick.Load()
	if last == 0 {
		return time.Time{}
	}
	return t.born.Add(time.Duration(last - 1))
}

// NotePause makes the next Awake (a request's, or the heartbeat's)
// recover as from a pause, as if the last tick were an hour ago: for a
// host that learns of a pause the heartbeat cannot see (the process
// restored from a snapshot taken after its last tick).
func (t *Takeover) NotePause() { t.tick.Store(t.mono() - int64(time.Hour)) }

// SawCut records at (a version: unix ms << 16) as when this node was last
// cut off, as NoticeReturns does at the first tick at which some member
// is no longer usable: a lapse found later keeps what this node wrote
// from there (lapseKeepFrom).
func (t *Takeover) SawCut(at uint64) { t.cutAt.Store(at) }

// Suspect makes shard s warm as a wiped shard with sources src, read
// through key by key (Settle) and never pulled until it is claimed again
// (a lazy re-verification): what this node holds there is no fallback;
// a key the sources lack goes, but for a version at or above keptFrom
// (for every wiped shard, as after a lapse: warm.keptFrom). It reports
// whether s started to warm (it did not already); Trust ends it.
func (t *Takeover) Suspect(s int, src []string, keptFrom uint64) (started bool) {
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s < 0 || s >= len(w.flags) {
		return false
	}
	w.keptFrom = keptFrom
	if !w.flags[s].Swap(true) {
		w.active.Add(1)
		started = true
	}
	w.src[s] = src
	w.wiped[s] = true
	return started
}

// Trust ends the warm-up of shard s and its wipe: what this node holds
// there is served as it is.
func (t *Takeover) Trust(s int) {
	w := &t.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if s < 0 || s >= len(w.flags) {
		return
	}
	w.finish(s)
	delete(w.wiped, s)
}

// Wiped reports whether shard s's local items were dropped, or are about
// to be, and not pulled since (its local copy is no fallback).
func (t *Takeover) Wiped(s int) bool {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	return t.w.wiped[s]
}

// Pull pulls shards ss whole from m in view v now, as the warm-up worker
// does (pullRun.pullFrom), each at its current claim count, and ends
// their warm-up; it returns those to try again (the pull failed).
func (t *Takeover) Pull(ctx context.Context, v *membership.View, m Source, ss []int) (retry []int) {
	w := &t.w
	w.mu.Lock()
	q := queued{shards: ss, claims: make(map[int]uint64, len(ss))}
	for _, s := range ss {
		q.claims[s] = w.claims[s]
	}
	w.mu.Unlock()
	p := &pullRun{t: t, q: q, tried: map[int]int{}, rounds: map[int]int{}}
	return p.pullFrom(ctx, v, dumpSource{m: m}, ss)
}
