package server

import (
	"runtime"

	"shoal/protocol"
)

// evState is a connection's state under an event loop (Config.EventLoop);
// the goroutine driver leaves it zero. Only the connection's loop touches it.
type evState struct {
	loop *loop
	fd   int
	// drained: this wake-up's read came back short, so the socket is empty
	// until the next edge, and reading again would only return EAGAIN.
	drained bool
	// hup: the peer has shut down its side; read to EOF, never trust a
	// short read.
	hup bool
	// stalled: replies wait for the socket to drain (EPOLLOUT); commands
	// and input are left until they are written.
	stalled bool
	// closing: the connection ended (quit) with replies still to write;
	// it closes once they are out.
	closing bool
	// lastIn is the loop's clock (nanoseconds) at the last input, for
	// IdleTimeout.
	lastIn int64
	// memBlocked: process stopped because the replies waiting for sockets
	// hold more than the limit (waitMemory); memListed: the loop lists
	// the connection to run again once they hold less (loop.memWait).
	memBlocked, memListed bool
	// served: the last time the connection ran commands, every reply
	// was written (a client that reads: see loop.waitMem).
	served bool
	// memCmd: a retrieval waitMemory stopped before it ran; process runs
	// it first (its keys alias the read buffer, which waits with it).
	memCmd protocol.Command
	// small: the retrieval running now was let through past the limit
	// because its reply fits a base reply buffer (fitsBase); its values
	// do not wait for the limit either (mustWait).
	small bool
	// stuck: the loop's clock (+1) since when the memory sweep has seen
	// replies waiting on the connection and none of them taken, through
	// the current spell past the limit (loop.memSweep); 0: none seen.
	// written and queued: the bytes written and in the socket's send
	// queue at that sweep.
	stuck   int64
	written int64
	queued  int
	// later: the loop's sendAll sends the replies (loop.sendLater);
	// laterEvents, the events that came meanwhile, served after it.
	later       bool
	laterEvents uint32
}

// startLoopsLocked starts the event loops (Config.Loops). If the system
// cannot (no epoll), connections get goroutines and a warning is logged
// once. Callers hold s.mu.
func (s *Server) startLoopsLocked() {
	n := s.cfg.Loops
	if n == 0 {
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	for range n {
		l, err := newLoop(s)
		if err != nil {
			s.log.Warn("event loop unavailable, serving a goroutine per connection", "err", err)
			for _, l := range s.loops {
				l.stop()
			}
			s.loops, s.loopsOff = nil, true
			return
		}
		s.loops = append(s.loops, l)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !l.parks() {
				// A loop that blocks in epoll_wait is a thread's worth of
				// work: keeping it on one thread saves the hand-offs
				// between threads after its waits.
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
			}
			l.run()
		}()
	}
}
