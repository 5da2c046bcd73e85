package cluster

import (
	"context"
	"slices"
	"sync"
)

// hold bounds the bytes of other owners' values that this node's
// multi-gets hold at once. A multi-get answers its keys in order, so the
// values its remote batches return wait until every key before theirs is
// answered; without a bound, a client choosing its keys (many values of
// 1 MB on other nodes, behind small ones that keep the server's batches
// wide) made a node hold 32 of them per connection, outside the
// connection memory limit.
//
// A batch's reader takes the bytes of each value before it keeps it
// (peer.GetOptions.Admit) and keeps it only if the node stays within the
// limit, or holds nothing at all (a value larger than the limit still goes
// through, alone). A value refused is dropped and asked for again, after
// the keys before it are answered and the call gave back everything it
// held (GetMulti); a call that could answer nothing waits until some bytes
// are given back. Only calls that hold nothing wait, and none waits while
// holding, so the waits cannot deadlock.
//
// The waiting calls queue, oldest first, each with the size of the value
// that stopped it (a ticket): the others take only what leaves the oldest
// one room for its value, so it goes next, however large its value and
// however steady the others' load. A value larger than the bound goes
// once the others have given back everything; until it has, no other
// remote value is kept on the node.
type hold struct {
	limit int64

	mu    sync.Mutex
	held  int64
	peak  int64         // highest held (stats)
	freed chan struct{} // closed, and replaced, when bytes are given back
	queue []*ticket     // calls waiting, oldest first
}

// ticket is a waiting call's place in the queue.
type ticket struct{ need int64 }

// defaultHold is RouterConfig.MultiGetHold's default: a few large values
// at once, thousands of small ones. Values held are garbage once answered,
// and the runtime lets garbage grow as large as what is live before it
// collects: 32 MiB held made a node peak ~100 MB higher than 8 MiB in
// e2e/hostile's "wide multi-gets" (32 connections: 291-313 against 193-211 MB).
const defaultHold = 8 << 20

func newHold(limit int64) *hold {
	if limit <= 0 {
		limit = defaultHold
	}
	return &hold{limit: limit, freed: make(chan struct{})}
}

// take reserves n bytes for a round of tk's call (nil: a call not
// waiting) if they fit beside the oldest waiting call's need (its own
// round: within the bound), or if nothing is held and no other call waits
// ahead of it.
func (h *hold) take(n int64, tk *ticket) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	room, first := h.limit, len(h.queue) == 0 || h.queue[0] == tk
	if !first {
		room -= h.queue[0].need
	}
	if h.held+n > room && !(h.held == 0 && first) {
		return false
	}
	h.held += n
	h.peak = max(h.peak, h.held)
	return true
}

// enqueue puts tk's call in the queue, once, needing need bytes at least.
func (h *hold) enqueue(tk *ticket, need int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tk.need = max(tk.need, need)
	if !slices.Contains(h.queue, tk) {
		h.queue = append(h.queue, tk)
	}
}

// leave takes tk's call out of the queue (it answered a key, or ended),
// and wakes the others: the next one may fit now.
func (h *hold) leave(tk *ticket) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if i := slices.Index(h.queue, tk); i >= 0 {
		h.queue = slices.Delete(h.queue, i, i+1)
		tk.need = 0
		close(h.freed)
		h.freed = make(chan struct{})
	}
}

// give returns n bytes and wakes the calls waiting for some.
func (h *hold) give(n int64) {
	if n == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.held -= n
	close(h.freed)
	h.freed = make(chan struct{})
}

// freedSince returns what wait waits on: a channel closed at the next
// give. A round takes it before it sends anything, so that bytes given
// back while it ran (after one of its values was refused) end its wait
// at once.
func (h *hold) freedSince() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freed
}

// wait returns once freed is closed (bytes were given back, or a waiting
// call left, since it was taken), at once when nothing is held and tk's
// call is first in line, or when ctx ends.
func (h *hold) wait(ctx context.Context, freed <-chan struct{}, tk *ticket) {
	h.mu.Lock()
	idle := h.held == 0 && (len(h.queue) == 0 || h.queue[0] == tk)
	h.mu.Unlock()
	if idle {
		return
	}
	select {
	case <-freed:
	case <-ctx.Done():
	}
}

// waitFits returns once tk's call may run a round that keeps the value
// that stopped it (its need), as take would keep it: it is first in line
// with nothing held, or what the bound leaves beside what is held and the
// oldest call's need holds it; or when ctx ends. Without it
// a thousand waiting calls each sent a round at every give, to be
// refused again: a million forwarded gets in six seconds.
func (h *hold) waitFits(ctx context.Context, tk *ticket) {
	for ctx.Err() == nil {
		h.mu.Lock()
		first := len(h.queue) == 0 || h.queue[0] == tk
		free := h.limit - h.held
		if !first {
			free -= h.queue[0].need
		}
		fits := first && h.held == 0 || tk.need <= free // as take would keep it
		freed := h.freed
		h.mu.Unlock()
		if fits {
			return
		}
		select {
		case <-freed:
		case <-ctx.Done():
		}
	}
}

// stats returns the bytes held now and the most ever held.
func (h *hold) stats() (held, peak int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held, h.peak
}

// charge is what one round of a multi-get took from a hold: room takes
// room for its values before its batches ask for them, admit is the
// batches' peer.GetOptions.Admit, release gives it all back. admit refuses
// everything once released, as an abandoned batch's reader may still call
// it.
type charge struct {
	h        *hold
	tk       *ticket // the call's place in the queue
	mu       sync.Mutex
	n        int64
	per      int64 // the room taken for each key's value (room)
	reserved int64 // per times the keys, until settle
	kept     int64 // bytes of values kept within per
	released bool
}

// room takes, before a round of keys keys sends them, room for their
// values from the hold, and returns the most bytes of one value the
// round's batches ask for (peer.GetOptions.Room: an owner sends no
// larger value, only its size): an equal share, per key, of half what
// the bound leaves beside what is held and the oldest waiting call's need
// (as take), at most most bytes; roomFloor, taken from nothing, when the
// share is smaller. A larger value (the one that stopped the call's last
// round too) goes in the round's second ask, reserved at its size as
// take would keep it. What the owners send is
// so bounded node-wide: a thousand calls at once each asked them for
// every value, which the readers then refused after the owners had sent
// them, and the peer links carried gigabytes (requests queued behind
// them timed out, and the node marked its peer down).
func (c *charge) room(keys, most int) int {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	free, first := h.limit-h.held, len(h.queue) == 0 || h.queue[0] == c.tk
	if !first {
		free -= h.queue[0].need
	}
	keys = max(keys, 1)
	per := min(free/2/int64(keys), int64(most))
	if per < roomFloor {
		return roomFloor
	}
	h.held += per * int64(keys)
	h.peak = max(h.peak, h.held)
	c.mu.Lock()
	c.n += per * int64(keys)
	c.reserved, c.per = per*int64(keys), per
	c.mu.Unlock()
	return int(per)
}

// roomFloor is the room of a value when the hold has less to share:
// taken from nothing, so that small values still come (a round then
// holds at most roomFloor a key beyond the bound).
const roomFloor = 4 << 10

func (c *charge) admit(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return false
	}
	if int64(n) <= c.per {
		c.kept += int64(n)
		return true // within the room taken for it
	}
	if !c.h.take(int64(n), c.tk) {
		return false
	}
	c.n += int64(n)
	return true
}

// settle gives back the room taken for the round's first fetch but what
// the values it kept within it hold.
func (c *charge) settle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.h.give(c.reserved - c.kept)
	c.n += c.kept - c.reserved // n counted the room whole
	c.reserved, c.kept, c.per = 0, 0, 0
}

// reserve takes n bytes for a value whose size an owner gave (the
// round's second fetch), as admit would keep it.
func (c *charge) reserve(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released || !c.h.take(n, c.tk) {
		return false
	}
	c.n += n
	return true
}

// unkeep gives back n bytes of values kept, which the round drops.
func (c *charge) unkeep(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n -= n
	c.h.give(n)
}

// admitReserved is the second fetch's admit: its values were reserved.
func (c *charge) admitReserved(int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.released
}

func (c *charge) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	c.h.give(c.n)
	c.n = 0
}
