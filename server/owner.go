package server

import "fmt"

// owner is who holds a connection under an event loop: the one value its
// hand-offs between the loop and other goroutines change, always through
// handoff.to, and only by these moves:
//
//	from        to          by                            made by
//	onLoop      parked      park, offload                 the loop
//	parked      onLoop      release (the result came)     the loop
//	parked      away        release                       the loop
//	away        onLoop      comeBack (nothing waits)      the holder
//	away        handedBack  handBack                      the holder
//	handedBack  onLoop      resume                        the loop
//	away        orphaned    shut (the holder closes it)   the loop
//
// Every move but onLoop→parked (the loop's, on a connection no other
// goroutine touches then) is made under handoff.mu, with the readiness
// events and the early result it guards. The goroutine driver leaves a
// connection onLoop.
type owner uint32

const (
	// onLoop: the loop runs its commands, or it waits for input there.
	onLoop owner = iota
	// parked: a command left the loop (a request pending in Start, or a
	// command to run on a goroutine); the loop has not released the
	// connection yet, and a completion that comes now leaves its outcome
	// for the loop (in conn.req; handoff.ready).
	parked
	// away: released to the goroutine that finishes the command; the loop
	// only records its readiness events (handoff.events).
	away
	// handedBack: back in its loop's list of resumed connections.
	handedBack
	// orphaned: the loop stopped while it was away; the goroutine that
	// holds it closes its socket.
	orphaned
)

var ownerNames = [...]string{"onLoop", "parked", "away", "handedBack", "orphaned"}

func (o owner) String() string {
	if int(o) < len(ownerNames) {
		return ownerNames[o]
	}
	return fmt.Sprintf("owner(%d)", uint32(o))
}

// owner is the connection's owner now.
func (h *handoff) owner() owner { return owner(h.state.Load()) }

// to moves the connection from owner from to next; any other current owner
// is a broken hand-off, which must not go on silently.
func (h *handoff) to(from, next owner) {
	if old := owner(h.state.Swap(uint32(next))); old != from {
		panic(fmt.Sprintf("server: connection handed from %v to %v, but it was %v", from, next, old))
	}
}

// released reports whether the loop has let the connection go (away,
// handed back or orphaned): its events are then only recorded.
func (o owner) released() bool { return o >= away }
