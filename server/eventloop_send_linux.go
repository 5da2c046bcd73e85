//go:build linux

package server

import (
	"syscall"

	"golang.org/x/sys/unix"

	"shoal/internal/uring"
)

// A loop sends the replies of the connections it served in one wake-up
// together, in one system call (internal/uring), where the kernel offers
// io_uring: at depth 1 a wake-up serves several connections with one
// reply each, and a system call cost more here than the send it makes.
// Each send is non-blocking, as send(2) on the loop's sockets is, and done
// when the call returns; sendAll then settles each connection as work
// does after its write. Without io_uring (Config.NoIOUring, or a kernel
// that refuses it) a loop writes each connection's replies at once.

// later is a connection whose replies wait for the wake-up's sendAll,
// and what follows them: after, the connection's process returned open
// (work: settle), or handed back (resume: resumeSent).
type later struct {
	c     *conn
	after after
}

type after uint8

const (
	afterClose  after = iota // process returned false: never left for later
	afterOpen                // process returned true
	afterResume              // handed back after a command away
)

// afterProcess is what follows replies of process, which returned open.
func afterProcess(open bool) after {
	if open {
		return afterOpen
	}
	return afterClose
}

// sendLater leaves c's replies to sendAll and reports whether it did.
// Only a connection that stays the loop's: one lent to its command away
// may be written by the goroutine that completes it, which must find the
// replies before its own written. Only replies within a base buffer: a
// connection whose replies outgrew it has met a full socket (process
// writes at flushAt, and a large value at once) or holds memory that
// counts against the limit, which it must see at once (account). The
// replies are counted before they wait: the next connection's retrieval
// must see them against the limit.
func (l *loop) sendLater(c *conn, a after) bool {
	if !l.out.ok() || a == afterClose || !c.pending() || c.err != nil || c.hand.owner() == parked || len(c.out)-c.sent > outBase {
		return false
	}
	c.held = len(c.out) // handed to a write, as flush does
	c.account()
	c.ev.later = true
	l.later = append(l.later, later{c, a})
	return true
}

// sendAll sends the replies sendLater left, all in one system call (one
// connection: send(2), which costs no more), and settles each
// connection; one that must run on (settle) runs now, and its replies go
// in the next round.
func (l *loop) sendAll() {
	for len(l.later) > 0 {
		batch := l.later
		l.later = l.laterSpare[:0]
		cs := l.laterConns[:0]
		for _, w := range batch {
			cs = append(cs, w.c)
		}
		if len(cs) > 1 && l.out.ok() {
			l.srv.ringCalls.Add(int64(len(cs)+ringEntries-1) / ringEntries)
			l.srv.ringSends.Add(int64(len(cs)))
		}
		res := l.out.send(cs)
		for i, w := range batch {
			l.sent(w, res[i])
		}
		clear(batch)
		clear(cs)
		l.laterSpare, l.laterConns = batch[:0], cs[:0]
	}
}

// sent records how w's send went (res, as an Op's: applySend) and goes
// on with its connection.
func (l *loop) sent(w later, res int32) {
	c := w.c
	c.ev.later = false
	c.applySend(res)
	switch {
	case w.after == afterResume:
		l.resumeSent(c)
	case l.settle(c, true):
		l.runConn(c)
	}
	if ev := c.ev.laterEvents; ev != 0 && !c.ev.later && l.conns[c.ev.fd] == c {
		c.ev.laterEvents = 0
		l.serve(c, ev)
	}
}

// applySend records how c's send went (res, as a uring.Op's); one not
// sent (ECANCELED: never submitted; EINTR) is sent now with send(2).
func (c *conn) applySend(res int32) {
	switch {
	case res == -int32(unix.ECANCELED), res == -int32(unix.EINTR):
		c.flush()
	case res >= 0:
		c.wrote(int(res), nil)
	case res == -int32(unix.EAGAIN):
		c.wrote(0, nil) // the socket is full: EPOLLOUT brings it back
	default:
		c.wrote(0, syscall.Errno(-res))
	}
}

// forgetLater drops c, closing, from the replies sendAll would send: its
// descriptor is closed, and its number may be another socket's by then.
func (l *loop) forgetLater(c *conn) {
	if !c.ev.later {
		return
	}
	c.ev.later, c.ev.laterEvents = false, 0
	for i, w := range l.later {
		if w.c == c {
			l.later = append(l.later[:i], l.later[i+1:]...)
			return
		}
	}
}

// newRing is the loop's ring, nil without one: Config.NoIOUring, or a
// kernel that refuses io_uring (logged once per server).
func (s *Server) newRing() *uring.Ring {
	if s.cfg.NoIOUring {
		return nil
	}
	r, err := uring.New(ringEntries)
	if err != nil {
		s.ringOnce.Do(func() { s.log.Info("event loops send with send(2), one call per connection", "err", err) })
		return nil
	}
	return r
}

// ringEntries: the sends of one system call; more connections served in
// a wake-up take several.
const ringEntries = 256
