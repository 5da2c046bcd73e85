package gossip

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is gossip's view of one node's health.
type State int

const (
	// Unknown: never seen by gossip, or not listed by the caller.
	Unknown State = iota
	// Alive: the newest incarnation answers probes.
	Alive
	// Suspect: this node's probe of the newest incarnation failed; memberlist
	// is waiting for others to confirm or for the node to refute.
	Suspect
	// Dead: memberlist declared the newest incarnation failed, or it left.
	Dead
)

func (s State) String() string {
	switch s {
	case Unknown:
		return "unknown"
	case Alive:
		return "alive"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// maxInstances bounds the incarnations remembered per node; the oldest dead
// ones are forgotten first.
const maxInstances = 4

// instance is one process incarnation of a node, as memberlist reported it.
type instance struct {
	state State
	addr  string // advertised ip:port, normalized
	seq   uint64 // order of the last join; higher is newer
	// deadAt: another node declared this incarnation dead while this node
	// still saw it alive; it is Suspect until then (see deadGrace).
	deadAt time.Time
}

// deadGrace is how long a death that other nodes declare stays Suspect
// here while this node last saw the incarnation alive. A node coming back
// from a partition broadcasts the deaths it declared while cut off; the
// others apply them until the subject refutes, a gossip round later, and
// for that moment would route around a live node (seen in the partition
// test: reads of keys whose two owners both looked dead were misses). An
// alive event (its refutation) within the grace clears it; a failed probe
// of this node's confirms it at once; a successful one extends it (the
// ping of a suspect starts at once, and again every reconcile interval).
// The death this node's own memberlist declares gets the same grace: a
// suspicion it raised during a partition, whose message the subject never
// heard and so never refuted, expired 2 s after the heal; a second later
// the subject was Dead here and routed around, though it answered every
// request (e2e/history seed 23, a 2.6 s partition: a stale read 2 s after
// settling).
const deadGrace = time.Second

type eventKind int

const (
	evAlive   eventKind = iota // NotifyJoin or NotifyUpdate
	evDead                     // NotifyLeave (dead or left)
	evSuspect                  // this node's probe failed
	evAck                      // this node's probe succeeded
	evSynced                   // marker: the events of a join are ahead of it (Synced)
)

// event is what a memberlist callback enqueues: copies only, since the
// *memberlist.Node it was given is rewritten in place under memberlist's lock.
type event struct {
	kind eventKind
	name string // memberlist name: node + "/" + instance
	addr string // only for evAlive and evDead
}

// change is one node's reported health moving from one state to another.
type change struct {
	node     string
	from, to State
}

// splitName parses a memberlist name; ok is false for names not made by
// this package.
func splitName(name string) (node, inst string, ok bool) {
	i := strings.LastIndexByte(name, '/')
	if i <= 0 || i == len(name)-1 {
		return "", "", false
	}
	return name[:i], name[i+1:], true
}

func nodeAddr(n *memberlist.Node) string {
	ip, ok := netip.AddrFromSlice(n.Addr)
	if !ok {
		return ""
	}
	return netip.AddrPortFrom(ip.Unmap(), n.Port).String()
}

// enqueue is the only thing memberlist callbacks do: append and signal.
func (g *Gossip) enqueue(ev event) {
	g.qmu.Lock()
	g.queue = append(g.queue, ev)
	g.qmu.Unlock()
	select {
	case g.qready <- struct{}{}:
	default:
	}
}

// drain takes every queued event.
func (g *Gossip) drain() []event {
	g.qmu.Lock()
	defer g.qmu.Unlock()
	evs := g.queue
	g.queue = nil
	return evs
}

// apply folds events into the per-instance states and reports how the
// health of listed nodes changed.
func (g *Gossip) apply(evs []event) []change {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ev := range evs {
		if ev.kind == evSynced {
			close(g.synced) // enqueued once (markSynced)
			continue
		}
		node, id, ok := splitName(ev.name)
		if !ok {
			continue
		}
		insts := g.nodes[node]
		in := insts[id]
		if in == nil {
			if ev.kind == evSuspect || ev.kind == evAck {
				continue
			}
			if insts == nil {
				insts = make(map[string]*instance)
				g.nodes[node] = insts
			}
			in = &instance{}
			insts[id] = in
			g.seq++
			in.seq = g.seq
		}
		switch ev.kind {
		case evAlive:
			if in.state == Dead {
				g.seq++
				in.seq = g.seq
			}
			in.state, in.addr, in.deadAt = Alive, ev.addr, time.Time{}
		case evDead:
			in.addr = ev.addr
			if in.state == Alive {
				in.state, in.deadAt = Suspect, g.now().Add(deadGrace)
				g.probeNow() // an ack of ours within the grace extends it
			} else if in.deadAt.IsZero() {
				in.state = Dead
			}
		case evSuspect:
			switch {
			case !in.deadAt.IsZero():
				in.state, in.deadAt = Dead, time.Time{} // our probe confirms it
			case in.state == Alive:
				in.state = Suspect
			}
		case evAck:
			// During a grace, an ack (reconcileLoop pings the node
			// itself: memberlist no longer probes a node it holds dead)
			// extends the grace past the next ping instead: only its
			// refutation (an alive event) clears the death, which
			// reconcileLoop then asks for with a join, and a node
			// that answers is not routed around meanwhile. A node that
			// left answers only until it shuts down, leaveTimeout later.
			switch {
			case in.state == Suspect && in.deadAt.IsZero():
				in.state = Alive
			case !in.deadAt.IsZero():
				in.deadAt = g.now().Add(g.interval + deadGrace)
			}
		}
		prune(insts)
	}
	g.graceEnd = g.expireLocked(g.now())
	return g.recomputeLocked()
}

// dead reports whether memberlist declared this incarnation dead, even if
// its grace still runs: for picking the incarnation that speaks for a node
// and for pruning, it is dead.
func (in *instance) dead() bool { return in.state == Dead || !in.deadAt.IsZero() }

// expireLocked turns the deaths whose grace ended by now into Dead and
// returns the earliest grace still running (zero if none).
func (g *Gossip) expireLocked(now time.Time) (next time.Time) {
	for _, insts := range g.nodes {
		for _, in := range insts {
			switch {
			case in.deadAt.IsZero():
			case !now.Before(in.deadAt):
				in.state, in.deadAt = Dead, time.Time{}
			case next.IsZero() || in.deadAt.Before(next):
				next = in.deadAt
			}
		}
	}
	return next
}

// prune forgets the oldest dead incarnations beyond maxInstances.
func prune(insts map[string]*instance) {
	for len(insts) > maxInstances {
		var oldest string
		var min uint64
		for id, in := range insts {
			if in.dead() && (oldest == "" || in.seq < min) {
				oldest, min = id, in.seq
			}
		}
		if oldest == "" {
			return
		}
		delete(insts, oldest)
	}
}

// listedLocked reports whether the caller listed node (self always is).
func (g *Gossip) listedLocked(node string) bool {
	if node == g.cfg.Node {
		return true
	}
	_, ok := g.peers[node]
	return ok
}

// healthLocked picks the incarnation that speaks for node: first one at the
// address etcd lists (so a stale incarnation elsewhere does not count), then
// one not dead (two incarnations cannot share an address at once, so at a
// shared address the dead one is the old one even if it was heard of last),
// then the one that joined last.
func (g *Gossip) healthLocked(node string) State {
	if _, in := g.bestLocked(node); in != nil {
		return in.state
	}
	return Unknown
}

// bestLocked returns the incarnation that speaks for a listed node, or nil.
func (g *Gossip) bestLocked(node string) (id string, best *instance) {
	if !g.listedLocked(node) {
		return "", nil
	}
	want := g.peers[node]
	var bestMatch bool
	for i, in := range g.nodes[node] {
		match := want != "" && in.addr == want
		if best == nil || newer(in, match, best, bestMatch) {
			id, best, bestMatch = i, in, match
		}
	}
	return id, best
}

func newer(a *instance, aMatch bool, b *instance, bMatch bool) bool {
	if aMatch != bMatch {
		return aMatch
	}
	if a.dead() != b.dead() {
		return b.dead()
	}
	return a.seq > b.seq
}

// recomputeLocked compares every listed node's health with what was last
// reported and records the difference.
func (g *Gossip) recomputeLocked() []change {
	var changes []change
	check := func(node string) {
		s := g.healthLocked(node)
		if old := g.reported[node]; old != s {
			changes = append(changes, change{node: node, from: old, to: s})
			if s == Unknown {
				delete(g.reported, node)
			} else {
				g.reported[node] = s
			}
		}
	}
	check(g.cfg.Node)
	for node := range g.peers {
		if node != g.cfg.Node {
			check(node)
		}
	}
	for node := range g.reported {
		if !g.listedLocked(node) {
			check(node)
		}
	}
	return changes
}

// publish logs changes and wakes whoever watches Changed.
func (g *Gossip) publish(changes []change) {
	if len(changes) == 0 {
		return
	}
	for _, c := range changes {
		g.log.Info("gossip: peer health changed", "node", c.node, "from", c.from, "to", c.to)
	}
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// eventDelegate, pingDelegate and metaDelegate are memberlist's callbacks.
// memberlist calls them with its node lock held (and the *Node it passes is
// rewritten in place later), so each copies what it needs and enqueues.
type (
	eventDelegate struct{ g *Gossip }
	pingDelegate  struct{ g *Gossip }
	metaDelegate  struct{ meta []byte }
)

func (d eventDelegate) NotifyJoin(n *memberlist.Node) {
	d.g.enqueue(event{kind: evAlive, name: n.Name, addr: nodeAddr(n)})
}

func (d eventDelegate) NotifyUpdate(n *memberlist.Node) {
	d.g.enqueue(event{kind: evAlive, name: n.Name, addr: nodeAddr(n)})
}

func (d eventDelegate) NotifyLeave(n *memberlist.Node) {
	d.g.enqueue(event{kind: evDead, name: n.Name, addr: nodeAddr(n)})
}

func (pingDelegate) AckPayload() []byte { return nil }

func (d pingDelegate) NotifyPingComplete(n *memberlist.Node, _ time.Duration, _ []byte) {
	d.g.enqueue(event{kind: evAck, name: n.Name})
}

func (d metaDelegate) NodeMeta(limit int) []byte {
	if len(d.meta) > limit {
		return nil // Validate keeps Meta within MetaMaxSize, the limit passed.
	}
	return d.meta
}
func (metaDelegate) NotifyMsg([]byte)                           {}
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}
