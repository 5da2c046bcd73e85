package history

// The fault injector: one fault at a time on real processes, each returned
// as an Episode (injected, healed, settled). Durations and targets come
// from the run's seeded rand.

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// settleTimeout bounds the wait for the cluster to converge after a fault.
const settleTimeout = 60 * time.Second

type injector struct {
	t       testing.TB
	cl      *cluster
	log     *Log
	rng     *rand.Rand
	extra   []string // flags for joining nodes
	joined  int      // joins so far: names n4, n5, ...
	initial int      // members at the start
	stopMax time.Duration
	cutMax  time.Duration // longest partition
	cut     time.Duration // when set, every partition's length
}

// between returns a duration in [lo, hi) from the run's rand.
func (in *injector) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(in.rng.Int63n(int64(hi-lo)))
}

// pick returns a random member.
func (in *injector) pick() *node {
	ms := in.cl.members()
	return ms[in.rng.Intn(len(ms))]
}

// choose picks the next fault kind: a join when the cluster is at its
// initial size, a leave of a joined node otherwise, among the others.
func (in *injector) choose(kinds []string) string {
	var ok []string
	for _, k := range kinds {
		switch {
		case k == KindJoin && len(in.cl.members()) > in.initial:
		case k == KindLeave && len(in.cl.members()) <= in.initial:
		default:
			ok = append(ok, k)
		}
	}
	if len(ok) == 0 { // only joins and leaves asked for
		if len(in.cl.members()) > in.initial {
			return KindLeave
		}
		return KindJoin
	}
	return ok[in.rng.Intn(len(ok))]
}

func (in *injector) inject(kind string) Episode {
	switch kind {
	case KindKill:
		return in.kill(in.pick())
	case KindStop:
		return in.stop(in.pick())
	case KindEtcdKill:
		return in.etcdKill()
	case KindRolling:
		return in.rolling()
	case KindJoin:
		return in.join()
	case KindLeave:
		return in.leave()
	case KindPartition:
		return in.partition(in.pick())
	}
	in.t.Fatalf("unknown fault %q", kind)
	return Episode{}
}

// settle waits until every member sees the same ring, all alive.
func (in *injector) settle(e *Episode) {
	in.t.Helper()
	deadline := time.Now().Add(settleTimeout)
	var trail []string // what held it back, each change with its time
	last := ""
	for {
		ok, seen := converged(in.cl.members())
		if ok {
			break
		}
		if seen != last {
			trail = append(trail, fmt.Sprintf("%.1f s: %s", (in.log.Now()-e.Start).Seconds(), seen))
			last = seen
		}
		if time.Now().After(deadline) {
			// Each node prints its goroutines (Go's SIGQUIT) into the
			// stderr the harness logs: what a stuck warm-up waits on.
			for _, n := range in.cl.members() {
				n.proc().signal(syscall.SIGQUIT)
			}
			time.Sleep(500 * time.Millisecond)
			in.t.Fatalf("after %v, still not converged after %s %s: %s", settleTimeout, e.Kind, e.Target, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.Settled = in.log.Now()
	if e.Healed != 0 && e.Settled-e.Healed > slowSettle {
		in.t.Logf("%s %s took %.1f s to settle after the heal; what held it back:\n\t%s",
			e.Kind, e.Target, (e.Settled - e.Healed).Seconds(), strings.Join(trail, "\n\t"))
	}
}

// slowSettle: a settle this long after the heal is logged with what held
// it back (most take under 3 s).
const slowSettle = 4 * time.Second

// answering waits until n serves stats again, then lets clients use it.
func (in *injector) answering(n *node) {
	in.t.Helper()
	testutil.WaitUntil(in.t, 20*time.Second, n.name+" answering after its start", func() (bool, string) {
		return clusterStats(n.addr) != nil, "no answer"
	})
	n.up.Store(true)
}

// kill: kill -9, down for 0.5–2 s, restart with the same name and ports.
func (in *injector) kill(n *node) Episode {
	down := in.between(500*time.Millisecond, 2*time.Second)
	e := Episode{Kind: KindKill, Target: n.name, Detail: fmt.Sprintf("down %.1f s", down.Seconds())}
	n.up.Store(false)
	e.Start = in.log.Now()
	n.proc().signal(syscall.SIGKILL)
	<-n.proc().done
	time.Sleep(down) // the fault itself
	n.restart(in.t)
	e.Healed = in.log.Now()
	in.answering(n)
	in.settle(&e)
	return e
}

// stop: SIGSTOP for 2 s to stopMax (8 s in long mode), then SIGCONT.
func (in *injector) stop(n *node) Episode {
	d := in.between(2*time.Second, in.stopMax)
	e := Episode{Kind: KindStop, Target: n.name, Detail: fmt.Sprintf("stopped %.1f s", d.Seconds())}
	n.up.Store(false)
	e.Start = in.log.Now()
	n.proc().signal(syscall.SIGSTOP)
	time.Sleep(d) // the fault itself
	n.proc().signal(syscall.SIGCONT)
	e.Healed = in.log.Now()
	n.up.Store(true)
	in.settle(&e)
	return e
}

// etcdKill: kill -9 of etcd, down 3–6 s, restarted on its data.
func (in *injector) etcdKill() Episode {
	d := in.between(3*time.Second, 6*time.Second)
	e := Episode{Kind: KindEtcdKill, Target: "etcd", Detail: fmt.Sprintf("down %.1f s", d.Seconds())}
	e.Start = in.log.Now()
	in.cl.etcd.p.signal(syscall.SIGKILL)
	<-in.cl.etcd.p.done
	time.Sleep(d) // the fault itself
	waitFree(in.t, in.cl.etcd.client)
	waitFree(in.t, in.cl.etcd.peer)
	in.cl.etcd.start(in.t)
	e.Healed = in.log.Now()
	in.settle(&e)
	return e
}

// rolling: SIGTERM each member in turn, restart it with the same name and
// ports, wait for convergence before the next.
func (in *injector) rolling() Episode {
	e := Episode{Kind: KindRolling, Target: "all"}
	e.Start = in.log.Now()
	for _, n := range in.cl.members() {
		n.up.Store(false)
		n.proc().signal(syscall.SIGTERM)
		select {
		case <-n.proc().done:
		case <-time.After(20 * time.Second):
			in.t.Fatalf("%s did not exit within 20 s of SIGTERM", n.name)
		}
		n.restart(in.t)
		e.Healed = in.log.Now()
		in.answering(n)
		in.settle(&e)
	}
	e.Detail = fmt.Sprintf("took %.1f s", (e.Settled - e.Start).Seconds())
	return e
}

// join starts a new node (a new name, fresh ports).
func (in *injector) join() Episode {
	in.joined++
	name := fmt.Sprintf("n%d", in.initial+in.joined)
	e := Episode{Kind: KindJoin, Target: name}
	e.Start = in.log.Now()
	e.Healed = e.Start
	n := startNode(in.t, in.cl, name, in.extra...)
	in.cl.setMembers(append(in.cl.members(), n))
	in.answering(n)
	in.settle(&e)
	return e
}

// leave: SIGTERM (hand off, leave, deregister) of the last joined node.
func (in *injector) leave() Episode {
	ms := in.cl.members()
	n := ms[len(ms)-1]
	e := Episode{Kind: KindLeave, Target: n.name}
	n.up.Store(false)
	e.Start = in.log.Now()
	n.proc().signal(syscall.SIGTERM)
	select {
	case <-n.proc().done:
	case <-time.After(20 * time.Second):
		in.t.Fatalf("%s did not exit within 20 s of SIGTERM", n.name)
	}
	e.Healed = in.log.Now()
	in.cl.setMembers(slices.DeleteFunc(ms, func(m *node) bool { return m == n }))
	if n.host >= 0 {
		in.cl.freeHost(n.host)
	}
	in.settle(&e)
	return e
}

// partition cuts a node off (its bridge port down: packets dropped, no
// reset) for 2 s to cutMax (15 s in long mode, past the 10 s lease), then
// heals it.
func (in *injector) partition(n *node) Episode {
	d := in.between(2*time.Second, in.cutMax)
	if in.cut > 0 {
		d = in.cut
	}
	e := Episode{Kind: KindPartition, Target: n.name, Detail: fmt.Sprintf("cut off %.1f s", d.Seconds())}
	n.up.Store(false)
	e.Start = in.log.Now()
	in.cl.nn.Cut(in.t, n.host)
	time.Sleep(d) // the fault itself
	in.cl.nn.Heal(in.t, n.host)
	e.Healed = in.log.Now()
	n.up.Store(true)
	in.settle(&e)
	return e
}
