package history

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Fault kinds the harness injects; Check treats only KindKill specially.
const (
	KindNone      = "none" // the baseline: no fault
	KindKill      = "kill -9"
	KindStop      = "sigstop"
	KindEtcdKill  = "etcd kill -9"
	KindRolling   = "rolling restart"
	KindJoin      = "join"
	KindLeave     = "leave"
	KindPartition = "partition"
)

// Options tune Check; the zero value means the defaults.
type Options struct {
	// KillLag is how long before (and after, for the client to see the
	// reply) a kill -9 an acknowledged write of a key the victim owned is
	// excused: the README allows losing what was still in flight to the
	// replicas. Default 200 ms, well over the replication lag measured in
	// the README (max 13.7 ms) on a machine shared with other work.
	KillLag time.Duration
	// Grace is how long after settling reads still count as "in fault".
	// Default 1 s.
	Grace time.Duration
	// Examples is how many violations of each kind each episode keeps
	// for the report. Default 5.
	Examples int
}

func (o Options) withDefaults() Options {
	if o.KillLag == 0 {
		o.KillLag = 200 * time.Millisecond
	}
	if o.Grace == 0 {
		o.Grace = time.Second
	}
	if o.Examples == 0 {
		o.Examples = 5
	}
	return o
}

// never is the effective end of a write that may still take effect.
const never = time.Duration(math.MaxInt64)

// write is one write with what Check derived for it.
type write struct {
	op    *Op
	acked bool          // STORED and not excused
	end   time.Duration // op.End when acked, never otherwise
}

// keyWrites is one key's writes: by value, and the acknowledged ones by
// end time with the latest start among them so far.
type keyWrites struct {
	key     string
	byValue map[int64]*write
	ackEnd  []time.Duration
	newest  []*write // newest[i]: the acked write with the latest start among ackEnd[:i+1]
}

// newestBefore is the acknowledged write that began last among those that
// ended before t; nil if none did.
func (kw *keyWrites) newestBefore(t time.Duration) *write {
	i, _ := slices.BinarySearch(kw.ackEnd, t) // first end >= t
	if i == 0 {
		return nil
	}
	return kw.newest[i-1]
}

// older reports whether a read of v (found) is older than the acknowledged
// write w: the write of v ended before w began. A value never written is
// older than anything.
func (kw *keyWrites) older(v int64, w *write) bool {
	wv := kw.byValue[v]
	return wv == nil || wv.end < w.op.Start
}

// Check judges the history: ops from a Log, and the episodes in the order
// they were injected, each with its checkpoint.
func Check(ops []Op, episodes []Episode, opt Options) *Report {
	opt = opt.withDefaults()
	r := &Report{Options: opt, Episodes: make([]EpisodeReport, len(episodes))}
	for i := range episodes {
		e := &episodes[i]
		r.Episodes[i] = EpisodeReport{Kind: e.Kind, Target: e.Target, Detail: e.Detail, Recovery: e.Settled - e.Healed, max: opt.Examples}
	}
	if len(episodes) == 0 {
		return r
	}
	at := func(t time.Duration) int { // the episode a time falls in
		i, _ := slices.BinarySearchFunc(episodes, t, func(e Episode, t time.Duration) int {
			if e.Start <= t {
				return -1
			}
			return 1
		})
		return max(i-1, 0)
	}
	inFault := func(ei int, t time.Duration) bool { return t < episodes[ei].Settled+opt.Grace }

	keys := writes(ops, func(op *Op) bool {
		ei, ok := excused(op, episodes, opt.KillLag)
		if ok {
			rep := &r.Episodes[ei]
			rep.Excused++
			rep.note(&rep.excused, "write %s=%d through %s acked %s, %s from the kill", op.Key, op.Value, op.Node, ms(op.End), ms(op.End-episodes[ei].Start))
		}
		return ok
	})
	strict := writes(ops, func(*Op) bool { return false })

	for i := range ops {
		op := &ops[i]
		ei := at(op.Start)
		rep := &r.Episodes[ei]
		if op.Kind == Write {
			rep.Writes++
		} else {
			rep.Reads++
		}
		if op.Result == Failed || op.Result == Timeout {
			// An error is seen when the operation ends: it belongs to
			// the episode it ended in (one in flight at an injection
			// belongs to that fault).
			ei := at(op.End)
			rep := &r.Episodes[ei]
			if !op.Final && inFault(ei, op.End) {
				rep.ErrorsInFault++
				rep.note(&rep.errors, "%s through %s ended at %s: %s (%s)", opName(op), op.Node, ms(op.End), op.Result, op.Err)
			} else {
				rep.ErrorsAfter++
				rep.note(&rep.errors, "%s through %s ended at %s, after settling: %s (%s)", opName(op), op.Node, ms(op.End), op.Result, op.Err)
			}
			continue
		}
		if op.Kind != Read || op.Final {
			continue
		}
		kw := keys[op.Key]
		if kw == nil {
			continue // never written: nothing to be stale against
		}
		w := kw.newestBefore(op.Start)
		if w == nil {
			continue
		}
		if op.Result == OK && !kw.older(op.Value, w) {
			continue
		}
		got := "miss"
		if op.Result == OK {
			got = fmt.Sprint(op.Value)
		} else {
			rep.Misses++
		}
		where, list := "after settling", &rep.staleAfter // listed apart: they break the promise
		if inFault(ei, op.Start) {
			rep.StaleInFault++
			where, list = "in fault", &rep.stale
		} else {
			rep.StaleAfter++
		}
		rep.note(list, "get %s through %s at %s (%s): %s, but %d was acked at %s (through %s, sent at %s)",
			op.Key, op.Node, ms(op.Start), where, got, w.op.Value, ms(w.op.End), w.op.Node, ms(w.op.Start))
	}

	checkpoints(r, ops, episodes, keys, strict)
	return r
}

// writes indexes the writes of ops by key; excuse says whether an
// acknowledged write counts as unacknowledged.
func writes(ops []Op, excuse func(*Op) bool) map[string]*keyWrites {
	keys := make(map[string]*keyWrites)
	for i := range ops {
		op := &ops[i]
		if op.Kind != Write {
			continue
		}
		kw := keys[op.Key]
		if kw == nil {
			kw = &keyWrites{key: op.Key, byValue: make(map[int64]*write)}
			keys[op.Key] = kw
		}
		w := &write{op: op, acked: op.Result == OK && !excuse(op), end: never}
		if w.acked {
			w.end = op.End
		}
		kw.byValue[op.Value] = w
	}
	for _, kw := range keys {
		var acked []*write
		for _, w := range kw.byValue {
			if w.acked {
				acked = append(acked, w)
			}
		}
		slices.SortFunc(acked, func(a, b *write) int { return cmpDur(a.end, b.end) })
		for i, w := range acked {
			kw.ackEnd = append(kw.ackEnd, w.end)
			if i > 0 && kw.newest[i-1].op.Start > w.op.Start {
				w = kw.newest[i-1]
			}
			kw.newest = append(kw.newest, w)
		}
	}
	return keys
}

// checkpoints counts lost and divergent keys at each episode's checkpoint;
// strict is the writes with no kill excused, to count the losses the
// excuse covered.
func checkpoints(r *Report, ops []Op, episodes []Episode, keys, strict map[string]*keyWrites) {
	finals := make(map[string][]*Op)
	for i := range ops {
		if op := &ops[i]; op.Final && op.Kind == Read {
			finals[op.Key] = append(finals[op.Key], op)
		}
	}
	lostBy := make(map[string]*write) // the write a key was found lost against at the last checkpoint
	for ei := range episodes {
		c := &episodes[ei].Check
		if c.Copies == nil && c.Owners == nil {
			continue
		}
		rep := &r.Episodes[ei]
		for _, key := range sortedKeys(c.Owners) {
			owners := c.Owners[key]
			var first int64
			diverged := false
			for i, o := range owners {
				v, ok := c.Copies[key][o]
				if !ok {
					v = Unread
				}
				if i == 0 {
					first = v
				} else if v != first {
					diverged = true
				}
			}
			if diverged {
				rep.Divergent++
				rep.note(&rep.divergent, "%s: owners %v hold %v", key, owners, copiesOf(c.Copies[key], owners))
			}

			w, lost := lostAt(keys[key], c, finals[key], owners)
			if lost == "" {
				delete(lostBy, key)
				if sw, slost := lostAt(strict[key], c, finals[key], owners); slost != "" {
					rep.ExcusedLost++
					rep.note(&rep.excused, "%s: lost %d, acked at %s through %s, excused: %s", key, sw.op.Value, ms(sw.op.End), sw.op.Node, slost)
				}
				continue
			}
			if lostBy[key] != w {
				rep.Lost++
				rep.note(&rep.lost, "%s: %d acked at %s through %s; %s", key, w.op.Value, ms(w.op.End), w.op.Node, lost)
			}
			lostBy[key] = w
		}
	}
}

// lostAt says why a key is lost at checkpoint c ("" if it is not): a
// final read, or every owner's copy, older than the newest acknowledged
// write w.
func lostAt(kw *keyWrites, c *Checkpoint, finals []*Op, owners []string) (w *write, why string) {
	if kw == nil {
		return nil, ""
	}
	w = kw.newestBefore(c.Start)
	if w == nil {
		return nil, ""
	}
	acceptable := func(v int64) bool { return v > 0 && !kw.older(v, w) }
	for _, op := range finals {
		if op.Start < c.Start || op.Start > c.End {
			continue
		}
		if op.Result == Miss {
			return w, "get through " + op.Node + ": miss; " + copiesOf(c.Copies[kw.key], owners)
		}
		if op.Result == OK && !acceptable(op.Value) {
			return w, fmt.Sprintf("get through %s: %d; %s", op.Node, op.Value, copiesOf(c.Copies[kw.key], owners))
		}
	}
	held, read := false, false
	for _, o := range owners {
		v, ok := c.Copies[kw.key][o]
		if ok && v != Unread {
			read = true
			held = held || acceptable(v)
		}
	}
	if read && !held {
		return w, "no owner holds it: " + copiesOf(c.Copies[kw.key], owners)
	}
	return w, ""
}

// excused reports whether op, an acknowledged write, ended within lag of a
// kill -9 of one of its key's owners (as they were before the kill), and
// the episode of that kill.
func excused(op *Op, episodes []Episode, lag time.Duration) (int, bool) {
	for i := range episodes {
		e := &episodes[i]
		if e.Kind != KindKill || op.End < e.Start-lag || op.End > e.Start+lag {
			continue
		}
		if i > 0 && episodes[i-1].Check.Owners != nil {
			if !slices.Contains(episodes[i-1].Check.Owners[op.Key], e.Target) {
				continue
			}
		}
		return i, true
	}
	return 0, false
}

func copiesOf(copies map[string]int64, owners []string) string {
	s := ""
	for i, o := range owners {
		if i > 0 {
			s += " "
		}
		v, ok := copies[o]
		switch {
		case !ok || v == Unread:
			s += o + ":unread"
		case v == Absent:
			s += o + ":absent"
		default:
			s += fmt.Sprintf("%s:%d", o, v)
		}
	}
	return s
}

func opName(op *Op) string {
	if op.Kind == Write {
		return fmt.Sprintf("set %s=%d", op.Key, op.Value)
	}
	if op.Final {
		return "final get " + op.Key
	}
	return "get " + op.Key
}

func cmpDur(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
