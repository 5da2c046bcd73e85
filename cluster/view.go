package cluster

import (
	"context"
	"sync"
	"time"

	"shoal/membership"
)

// Applying views: the membership publishes a new View (Node.Run's watch
// loop); the router's own goroutine (Run) applies it, never a request. To
// apply a view is to start warm-up of the shards this node takes over in
// it (takeover/warm.go), make clients for its new members, then publish the view
// and its clients together (one atomic pointer, peerSet), and close the
// clients of members that left. A request loads that pointer once, when it
// decides its Route, and uses what it loaded to the end; a request from
// the peer port is therefore never served by a view whose warm-up has not
// started.

// Run keeps the router current until ctx ends: it applies each new view
// as the membership signals it (and at every tick, should a signal be
// missed), pulls warming shards, re-verifies
// the shards shared with a member that comes back (takeover/returns.go) and hands
// back the writes members missed (hints.go); a goroutine of its own ticks
// for pause detection (takeover/pause.go). It returns
// when every goroutine it started has stopped.
func (r *Router) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { r.tk.RunWarm(ctx) })
	wg.Go(func() { r.tk.Heartbeat(ctx) })
	r.mu.Lock()
	r.tk.Begin(r.peers.Load().view) // what this node owns already
	r.push.numberShards(r.peers.Load().view, r.tk.Running())
	r.mu.Unlock()
	r.tk.Kick()
	r.apply()
	t := time.NewTicker(tickEvery)
	defer func() { t.Stop(); wg.Wait() }()
	changed := r.cfg.Members.Changed()
	var rs returns
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			r.apply()
			continue
		case <-t.C:
		}
		r.tk.CheckLapse()
		r.apply()
		r.tk.NoticeReturns(&rs, time.Now())
		r.push.handBackDue(ctx, r.peers.Load(), r.spawn)
	}
}

// View is the view requests route by now: the last one Run applied; nil
// before the first.
func (r *Router) View() *membership.View { return r.peers.Load().view }

// ViewApplied returns a channel closed once a view newer than View's is
// applied: take it before reading View, and a change in between is not
// missed.
func (r *Router) ViewApplied() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

// apply makes the membership's current view the one requests route by,
// when it is newer (see above). Run calls it; so do tests of routing
// alone, which run no Run.
func (r *Router) apply() {
	r.mu.Lock()
	// Read under r.mu: a view read before it, while a lapse's recovery
	// held it, was applied after the recovery though a newer one was out.
	v := r.cfg.Members.View()
	if v == nil {
		r.mu.Unlock()
		return
	}
	old := r.peers.Load()
	// A view is compared by identity, not epoch: within one epoch a
	// member gossip sees for the first time joins the ring (Node.placed).
	if r.closed || old.view == v {
		r.mu.Unlock()
		return
	}
	r.tk.Transition(old.view, v)
	r.push.numberShards(v, r.tk.Running())
	ps := &peerSet{view: v, byName: make(map[string]*member, len(v.Members))}
	for _, m := range v.Members {
		if m.Name == r.self || m.PeerAddr == "" {
			continue
		}
		if o := old.get(m.Name); o != nil && o.addr == m.PeerAddr {
			ps.byName[m.Name] = o
			continue
		}
		c, err := r.cfg.Pool.Get(m.PeerAddr)
		if err != nil {
			r.log.Error("cannot create peer client", "peer", m.Name, "addr", m.PeerAddr, "err", err)
			continue
		}
		ps.byName[m.Name] = &member{r: r, name: m.Name, addr: m.PeerAddr, client: c}
	}
	ps.targets = replTargets(ps)
	r.peers.Store(ps)
	close(r.applied)
	r.applied = make(chan struct{})
	r.mu.Unlock()
	r.tk.Kick() // the warm-up transition claimed pulls by the view published now
	for name, o := range old.byName {
		if ps.byName[name] != o {
			// Its in-flight requests fail over. Close waits for the
			// client's goroutines, a dial to a member cut off among
			// them: not on Run's goroutine.
			if !r.spawn(func() { r.cfg.Pool.Put(o.addr) }) {
				r.cfg.Pool.Put(o.addr)
			}
		}
	}
}

// Close closes every peer client. Requests after it are served locally or
// fail over as if every peer were down. Close is idempotent.
func (r *Router) Close() error {
	r.mu.Lock()
	r.closed = true
	old := r.peers.Swap(&peerSet{view: r.peers.Load().view})
	r.mu.Unlock()
	for _, m := range old.byName {
		r.cfg.Pool.Put(m.addr)
	}
	r.bgMu.Lock()
	r.bgClosed = true
	r.bgMu.Unlock()
	r.bg.Wait()
	return nil
}
