package server

import "testing"

// TestOwnerMoves walks a connection through every move of owner's table
// and checks that a move from an owner the connection does not have
// panics rather than go on: a hand-off that breaks must not pass silently.
func TestOwnerMoves(t *testing.T) {
	var h handoff
	for _, m := range []struct{ from, to owner }{
		{onLoop, parked}, {parked, onLoop}, // a get that completed before the release
		{onLoop, parked}, {parked, away}, {away, onLoop}, // back idle
		{onLoop, parked}, {parked, away}, {away, handedBack}, {handedBack, onLoop},
		{onLoop, parked}, {parked, away}, {away, orphaned},
	} {
		h.to(m.from, m.to)
		if got := h.owner(); got != m.to {
			t.Fatalf("after %v→%v the owner is %v", m.from, m.to, got)
		}
	}
	for _, o := range []owner{away, handedBack, orphaned} {
		if !o.released() {
			t.Errorf("%v: not released", o)
		}
	}
	for _, o := range []owner{onLoop, parked} {
		if o.released() {
			t.Errorf("%v: released", o)
		}
	}
	h.state.Store(uint32(away))
	func() {
		defer func() {
			if recover() == nil {
				t.Errorf("moving from handedBack a connection that is away did not panic")
			}
		}()
		h.to(handedBack, onLoop)
	}()
}
