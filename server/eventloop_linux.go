//go:build linux

package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"shoal/protocol"
)

// loop is one event loop: an epoll instance and the goroutine that waits
// on it, serving every ready connection in turn. Connections are
// registered edge-triggered for input and output once, and never modified.
//
// A wake-up for a connection writes what is pending, then reads and runs
// commands until the socket is empty (a short read or EAGAIN), then writes
// all their replies in one write. If the socket does not take them all, the
// rest wait for EPOLLOUT, and the connection's input waits with them.
type loop struct {
	srv    *Server
	epfd   int
	ep     *os.File        // epfd in Go's poller, for park
	epRaw  syscall.RawConn // ep's, nil if Go's poller refused it
	epPoll func(uintptr) bool
	epN    int   // what epPoll found
	epErr  error // and its error
	// epDeadline: ep has a read deadline set (park with a timeout)
	epDeadline bool
	wakefd     int // eventfd: new connections or stop
	idle       int64
	now        int64 // nanoseconds since start, read at each wake-up when idle > 0 or replies hold too much
	start      time.Time
	conns      map[int]*conn // by fd; the loop's goroutine only
	events     []unix.EpollEvent
	remote     bool // over a Cache that may wait (Server.remote)
	// queued: a Start went pending in this wake-up; Flush at its end.
	queued bool
	// out sends the wake-up's replies together (sendAll), nothing without
	// io_uring; later lists the connections whose replies wait for it.
	out        ringSender
	later      []later
	laterSpare []later
	laterConns []*conn
	// memWait lists the connections that stopped because the replies
	// waiting for sockets held more than the limit (conn.waitMemory),
	// run again once they hold less; memSwept is when memSweep last ran,
	// and sweeping that it ran in the current spell past the limit.
	memWait, memWaitServed []*conn
	memSwept               int64
	sweeping               bool

	// mu guards the fields below, handed over from other goroutines.
	mu       sync.Mutex
	added    []*conn
	resumed  []*conn // handed back after a command away (handoff)
	stopped  bool
	dropping bool // close the connections marked dropped (DropConns)
	// wakeClosed: shut closed wakefd; wake must not write to its number.
	wakeClosed bool
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("server: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("server: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("server: epoll_ctl: %w", err)
	}
	l := &loop{
		srv:    s,
		remote: s.remote,
		epfd:   epfd,
		wakefd: wakefd,
		idle:   int64(s.cfg.IdleTimeout),
		start:  time.Now(),
		conns:  make(map[int]*conn),
		events: make([]unix.EpollEvent, 256),
		out:    newRingSender(s.newRing(), s.log),
	}
	l.epPoll = l.pollReady
	// The epoll descriptor is itself pollable (readable while events are
	// ready), so Go's poller can wait on it: see park. Non-blocking, or
	// os.NewFile would not register it.
	if !s.remote {
		return l, nil // it blocks in epoll_wait
	}
	if err := unix.SetNonblock(epfd, true); err == nil {
		l.ep = os.NewFile(uintptr(epfd), "epoll")
		if rc, err := l.ep.SyscallConn(); err == nil {
			l.epRaw = rc
		}
	}
	return l, nil
}

// detach takes the socket out of nc: a duplicate of its descriptor, which
// the loop owns, and nc closed (which removes it from Go's poller). The
// duplicate shares the file description, so it is non-blocking already.
func detach(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("server: not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	nc.Close()
	return fd, nil
}

// add hands a new connection to the loop, which registers it. If the loop
// has stopped, it closes fd and reports false.
func (l *loop) add(c *conn, fd int) bool {
	c.ev = evState{loop: l, fd: fd}
	c.setIO(fdReader{c}, fdWriter{c})
	if l.remote {
		c.parks, c.doneReq = true, c.done
	}
	l.mu.Lock()
	stopped := l.stopped
	if !stopped {
		l.added = append(l.added, c)
	}
	l.mu.Unlock()
	if stopped {
		unix.Close(fd)
		return false
	}
	l.wake()
	return true
}

// stop makes the loop close its connections and return. It is idempotent.
func (l *loop) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.wake()
}

// dropConns makes the loop close its connections marked dropped.
func (l *loop) dropConns() {
	l.mu.Lock()
	l.dropping = true
	l.mu.Unlock()
	l.wake()
}

// wake interrupts the loop's wait. Once shut has closed wakefd it does
// nothing: the descriptor's number may belong to any other file of the
// process by then (a socket, which would get the 8 bytes in its stream).
// Under l.mu, which shut holds to close it.
func (l *loop) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wakeClosed {
		return
	}
	one := [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

// yieldEvery is how many wake-ups a loop runs between passes through the
// scheduler. Under load a loop never parks (events are ready each time it
// looks): it only makes raw system calls, which the scheduler does not
// count as scheduling, so other goroutines on its P (peer readers
// completing forwarded gets, timers) would wait for the runtime to
// preempt it after 10 ms. A yield now and then lets them run.
const yieldEvery = 64

// run serves the loop's connections until stop.
func (l *loop) run() {
	defer l.shut()
	timeout := -1
	if l.idle > 0 {
		// Idle connections are found by a sweep at this period.
		timeout = int(min(max(time.Duration(l.idle)/4, 10*time.Millisecond), time.Second) / time.Millisecond)
	}
	var swept int64
	for iter := 1; ; iter++ {
		if iter%yieldEvery == 0 {
			runtime.Gosched()
		}
		var n int
		var err error
		wait := timeout
		if l.sweeping || l.waitingMem() {
			wait = memRetryMs // replies hold too much: watch them closely
			if timeout >= 0 {
				wait = min(timeout, memRetryMs)
			}
		}
		if l.parks() {
			n, err = l.park(wait) // it looks before it waits
		} else if n, err = l.ready(); n == 0 && err == nil {
			n, err = l.park(wait)
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			l.srv.log.Error("event loop stopped", "err", err)
			return
		}
		over := l.srv.mem.outOver()
		if l.idle > 0 || over || l.sweeping || l.waitingMem() {
			l.now = int64(time.Since(l.start))
		}
		for i := range l.events[:n] {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.wakefd {
				if l.takeAdded() {
					return
				}
				continue
			}
			if c := l.conns[fd]; c != nil {
				l.serve(c, ev.Events)
			}
		}
		l.sendAll()
		l.flush()
		if l.idle > 0 && l.now-swept >= int64(timeout)*int64(time.Millisecond) {
			swept = l.now
			l.sweep()
		}
		l.watchMemory()
		// What the connections run again (watchMemory, and sendAll's
		// after their sends) queued goes out before the loop waits.
		l.sendAll()
		l.flush()
	}
}

// flush writes the peer requests the wake-up's connections queued
// (Cache.Flush), if any: they go out only on a Flush.
func (l *loop) flush() {
	if l.queued {
		l.queued = false
		l.srv.cache.Flush()
	}
}

// ready collects the events ready now without waiting. Under load there
// usually are some, and a raw system call spares the scheduler's
// bookkeeping of one that may block (entering and leaving it, and
// possibly handing the P to another thread); only when none are ready
// does run wait in a blocking epoll_wait.
func (l *loop) ready() (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// parks reports whether the loop waits in Go's poller (see park), or in
// a blocking epoll_wait on a thread of its own.
func (l *loop) parks() bool { return l.epRaw != nil }

// park waits until events are ready or timeout (ms, -1 for none) passes,
// and collects them. Over a Cache that may wait (not a Local) the loop's
// goroutine parks in Go's poller, which watches the epoll descriptor, as one waiting on a socket
// does: the goroutines completing its forwarded requests (peer readers)
// share its P, and a thread blocked in a system call would make the
// runtime hand that P between threads, with its monitor waking every
// 20 µs to take it; on a 3-node cluster that cost more CPU than the
// requests did. Over a Local, or if the poller refused the descriptor, a
// blocking epoll_wait, as memcached's worker threads wait: on 2 cores,
// parking cost a standalone node 10-20 % of its depth-16 throughput (Go's
// idle threads spin looking for work before they sleep).
func (l *loop) park(timeout int) (int, error) {
	if l.epRaw == nil {
		return unix.EpollWait(l.epfd, l.events, timeout)
	}
	switch {
	case timeout >= 0:
		l.ep.SetReadDeadline(time.Now().Add(time.Duration(timeout) * time.Millisecond))
		l.epDeadline = true
	case l.epDeadline:
		// A deadline left from a wait with a timeout (the loop watched
		// replies past the memory limit) would, once past, fail every
		// wait at once, before it looks for events: the loop would spin
		// and never see one.
		l.ep.SetReadDeadline(time.Time{})
		l.epDeadline = false
	}
	l.epN, l.epErr = 0, nil
	if err := l.epRaw.Read(l.epPoll); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		l.epRaw = nil // not pollable after all: block from now on
		return unix.EpollWait(l.epfd, l.events, timeout)
	}
	return l.epN, l.epErr
}

// pollReady is park's poll: done once events are ready (or an error).
func (l *loop) pollReady(uintptr) bool {
	l.epN, l.epErr = l.ready()
	return l.epN > 0 || l.epErr != nil
}

// takeAdded registers the connections handed over by add. It reports
// whether the loop must stop.
func (l *loop) takeAdded() bool {
	var b [8]byte
	unix.Read(l.wakefd, b[:])
	l.mu.Lock()
	added, resumed, stopped, dropping := l.added, l.resumed, l.stopped, l.dropping
	l.added, l.resumed, l.dropping = nil, nil, false
	l.mu.Unlock()
	if l.idle > 0 {
		l.now = int64(time.Since(l.start))
	}
	for _, c := range added {
		l.conns[c.ev.fd] = c
		c.ev.lastIn = l.now
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.ev.fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.ev.fd, &ev); err != nil {
			l.srv.log.Warn("event loop: cannot watch connection", "remote", c.raddr.String(), "err", err)
			l.close(c)
		}
	}
	if dropping {
		for _, c := range l.conns {
			if c.dropped.Load() && !l.away(c) {
				l.close(c)
			}
		}
	}
	for _, c := range resumed {
		l.resume(c)
	}
	return stopped
}

// serve handles one readiness event of c.
func (l *loop) serve(c *conn, events uint32) {
	if c.ev.later {
		// Its replies wait for sendAll, which settles it, then serves
		// these events: what follows its send must come first.
		c.ev.laterEvents |= events
		return
	}
	if c.hand.record(events) {
		return // a command is away: the events wait for its return
	}
	if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// Reset, or shut both ways: no reply can reach the client, so the
		// commands it left are not run. A client that hung up on replies
		// it did not read would otherwise have each of its gets fetched,
		// only to fail. (Writes it sent just before a reset may be lost:
		// they mostly were before too, as the loop's first write failed.)
		l.close(c)
		return
	}
	if c.pending() {
		c.flush()
		if c.pending() && c.err == nil {
			return // still full: wait for the next EPOLLOUT
		}
	}
	if c.ev.closing || c.err != nil {
		l.close(c)
		return
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 && !c.ev.stalled {
		return // writable, and nothing waited for it
	}
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.ev.hup = true
	}
	c.ev.drained = false
	l.work(c)
}

// work runs c's commands and writes their replies. When a command leaves
// the loop, work releases c (see handoff) — unless its get completed
// already, and then goes on with the next commands.
func (l *loop) work(c *conn) {
	c.takeOut()
	l.runConn(c)
}

// runConn is work past taking the reply buffer: it runs commands until c
// waits for input, for its socket, or for a command away. Replies the loop
// sends with others at the end of the wake-up (sendLater) leave run
// there; sendAll settles c and runs it on.
func (l *loop) runConn(c *conn) {
	for {
		c.ev.stalled = false
		open := c.process()
		if l.sendLater(c, afterProcess(open)) {
			return
		}
		c.flush()
		if !l.settle(c, open) {
			return
		}
	}
}

// settle decides what follows c's commands once their replies were
// written, as far as the socket took them: close, wait for input, the
// socket or memory, or lend c to its command away. It reports true when
// c's commands must run on at once.
func (l *loop) settle(c *conn, open bool) bool {
	switch {
	case c.err != nil && c.hand.owner() != parked:
		l.close(c)
		return false
	case !open && c.pending():
		c.ev.closing = true
		c.account()
		return false
	case !open:
		l.close(c)
		return false
	}
	blocked := c.ev.memBlocked
	c.ev.memBlocked = false
	if !blocked {
		c.ev.memListed = false // it ran: a listing left behind is skipped
	}
	if c.ev.stalled && !c.pending() && !blocked {
		// process stopped for replies the socket would not take, and
		// it took them since: the commands already read must run now,
		// as no edge may come for them (the client may be done
		// sending). TestSlowReader hung 1 run in ~50 without this.
		return true
	}
	c.ev.stalled = c.pending()
	c.account()
	if c.hand.owner() != parked {
		switch {
		case c.ev.stalled:
			c.ev.served = false // until its client takes these replies
		case !blocked:
			c.ev.served = true // its client took every reply of what ran
		}
		switch {
		case blocked && !c.ev.stalled:
			l.waitMem(c) // no edge will come: the loop runs it again
		case !c.ev.stalled:
			c.idle() // waiting for input
		}
		return false
	}
	// c belongs to the goroutine that completes its command, unless that
	// completed already (release true: run on).
	return l.release(c)
}

// release lends parked c to the goroutine that finishes its command and
// reports false; or, when the pending get completed already, appends its
// reply and reports true (c is the loop's again).
func (l *loop) release(c *conn) bool {
	h := &c.hand
	h.mu.Lock()
	if h.ready {
		h.ready = false
		h.to(parked, onLoop)
		h.mu.Unlock()
		c.finish()
		return true
	}
	// Shutdown waits for the command away (its goroutine, or the
	// completion of a pending get or write): what it does, a write's push
	// to the replicas included, is done before Shutdown returns. Added
	// before the move: a completion may come as soon as the lock is
	// released. The loop holds the group open: Add is safe.
	l.srv.wg.Add(1)
	h.to(parked, away)
	h.mu.Unlock()
	if h.offload {
		go func() {
			defer l.srv.wg.Done()
			c.runAway()
		}()
	}
	return false
}

// record keeps the readiness events of a released connection and reports
// true; false when the loop holds it (its commands may run).
func (h *handoff) record(events uint32) bool {
	if h.owner() == onLoop {
		return false // the loop's own: no other goroutine moves it
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	released := h.owner().released()
	if released {
		h.events |= events
	}
	return released
}

// away reports whether c is released by the loop (see owner).
func (l *loop) away(c *conn) bool { return c.hand.owner().released() }

// handBack returns c to its loop after a command away; called by the
// goroutine that owns c. If the loop has stopped, c is closed.
func (l *loop) handBack(c *conn) {
	h := &c.hand
	h.mu.Lock()
	if h.owner() == orphaned {
		h.mu.Unlock()
		c.flush() // the replies ready go out first, as far as the socket takes them
		unix.Close(c.ev.fd)
		l.srv.forget(c)
		return
	}
	h.to(away, handedBack)
	h.mu.Unlock()
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return // shut closes it: it is queued, not away
	}
	l.resumed = append(l.resumed, c)
	first := len(l.resumed) == 1
	l.mu.Unlock()
	if first {
		l.wake()
	}
}

// resume serves c handed back by handBack, with the events that arrived
// while it was away.
func (l *loop) resume(c *conn) {
	h := &c.hand
	h.mu.Lock()
	events := h.events
	h.events = 0
	h.to(handedBack, onLoop)
	h.mu.Unlock()
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.ev.hup = true
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.ev.drained = false
	}
	if c.dropped.Load() {
		l.close(c)
		return
	}
	if c.pending() {
		if l.sendLater(c, afterResume) {
			return // resumeSent follows
		}
		c.flush()
		l.resumeSent(c)
		return
	}
	l.resumeOn(c)
}

// resumeSent goes on with resume once c's replies were written, as far
// as the socket took them.
func (l *loop) resumeSent(c *conn) {
	if c.pending() && c.err == nil {
		c.ev.stalled = true
		c.account() // what the command away appended (a parked get's value)
		return      // wait for EPOLLOUT
	}
	l.resumeOn(c)
}

// resumeOn runs c's next commands, or closes it.
func (l *loop) resumeOn(c *conn) {
	if c.ev.closing || c.err != nil {
		l.close(c)
		return
	}
	l.work(c)
}

// sweep closes the connections idle longer than IdleTimeout. One whose
// replies wait for the client to read is not idle, as under the goroutine
// driver, which times out reads only; nor is one whose command is away.
func (l *loop) sweep() {
	for _, c := range l.conns {
		if l.now-c.ev.lastIn >= l.idle && !c.pending() && !l.away(c) && !c.ev.memListed {
			l.srv.idleKicks.Add(1)
			c.closeWhy = closeIdle
			l.close(c)
		}
	}
}

func (l *loop) close(c *conn) {
	l.forgetLater(c)
	delete(l.conns, c.ev.fd)
	unix.Close(c.ev.fd)
	l.srv.forget(c)
}

// shut closes every connection of the loop, and the loop. What Start
// queued in the wake-up that saw the stop is flushed first: run returns
// before its end-of-wake-up Flush, and a get parked there would otherwise
// wait out the peer timeout unsent (and Shutdown with it).
func (l *loop) shut() {
	l.flush()
	l.mu.Lock()
	added := l.added
	l.added, l.stopped = nil, true
	l.mu.Unlock()
	for _, c := range added {
		l.conns[c.ev.fd] = c
	}
	for _, c := range l.conns {
		if !c.hand.orphanIfAway() {
			// Replies ready go out first, as far as the socket takes them:
			// those of a command away that came back as the loop stopped
			// (handBack), or that waited for the wake-up's sendAll.
			c.flush()
			l.close(c)
		} else {
			c.cancel() // its command, away, gives up waiting: nobody reads the answer
		}
	}
	l.out.close()
	if l.ep != nil {
		l.ep.Close() // leaves Go's poller, closes epfd
	} else {
		unix.Close(l.epfd)
	}
	l.mu.Lock()
	l.wakeClosed = true // no wake after: stop, DropConns, add, handBack
	unix.Close(l.wakefd)
	l.mu.Unlock()
}

// orphanIfAway marks a connection that is away (and not handed back) an
// orphan, for its holder to close, and reports whether it did.
func (h *handoff) orphanIfAway() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owner() != away {
		return false
	}
	h.to(away, orphaned)
	return true
}

// fdReader reads a connection's non-blocking socket for its
// protocol.Reader, answering protocol.ErrAgain once the socket is empty.
type fdReader struct{ c *conn }

func (r fdReader) Read(p []byte) (int, error) {
	c := r.c
	c.waitInput()
	if c.ev.drained || len(p) == 0 {
		return 0, protocol.ErrAgain
	}
	for {
		// A raw syscall: the socket never blocks, so the scheduler need
		// not hear about it.
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(c.ev.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case e == 0 && n > 0:
			c.phase.Store(phaseParse)
			c.ctr.bytesRead.Add(int64(n))
			// A short read emptied the socket: anything later brings a
			// new edge. After a hang-up, read on to EOF.
			c.ev.drained = int(n) < len(p) && !c.ev.hup
			return int(n), nil
		case e == 0:
			return 0, io.EOF
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			c.ev.drained = true
			return 0, protocol.ErrAgain
		default:
			return 0, e
		}
	}
}

// fdWriter writes to a connection's non-blocking socket as much as it
// takes, without an error for the rest.
type fdWriter struct{ c *conn }

func (w fdWriter) Write(p []byte) (int, error) {
	fd := uintptr(w.c.ev.fd)
	done := 0
	for done < len(p) {
		q := p[done:]
		n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&q[0])), uintptr(len(q)), unix.MSG_NOSIGNAL, 0, 0)
		switch e {
		case 0:
			done += int(n)
			if int(n) < len(q) && (!w.c.hand.running || w.c.inBatch) {
				return done, nil // the socket buffer is full
			}
		case unix.EINTR:
		case unix.EAGAIN:
			if !w.c.hand.running || w.c.inBatch {
				return done, nil // the rest waits in the replies
			}
			if err := w.c.waitWritable(); err != nil {
				return done, err
			}
		default:
			return done, e
		}
	}
	return done, nil
}

// waitWritable waits, on the goroutine of a command run off the loop,
// until the socket takes more: such a command (a shard dump) may write
// more than a buffer holds, and blocks as under the goroutine driver. It
// gives up once the connection is dropped or its loop has stopped.
func (c *conn) waitWritable() error {
	start, queued := time.Now(), c.sendQueue()
	for {
		if q := c.sendQueue(); q < 0 || q < queued {
			start, queued = time.Now(), q // its client takes some: not stalled
		} else if time.Since(start) >= stallLimit && c.srv.mem.outOver() && !c.srv.cfg.PeerExtensions {
			// As memSweep closes a connection on its loop whose replies
			// wait unread through a spell past the limit: nothing left
			// the socket's send queue for stallLimit.
			c.srv.mem.evicted.Add(1)
			return errStalled
		}
		fds := []unix.PollFd{{Fd: int32(c.ev.fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
			return err
		}
		if fds[0].Revents&(unix.POLLOUT|unix.POLLERR|unix.POLLHUP) != 0 {
			return nil
		}
		if c.hand.owner() == orphaned || c.dropped.Load() {
			return ErrClosed
		}
	}
}

// sendQueueOf is the bytes in nc's socket send queue not yet taken by its
// client (SIOCOUTQ), -1 when unknown (not a socket).
func sendQueueOf(nc net.Conn) int {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	q := -1
	rc.Control(func(fd uintptr) {
		if n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); err == nil {
			q = n
		}
	})
	return q
}

// sendQueue is the bytes in c's socket send queue not yet taken by its
// client (SIOCOUTQ), -1 when unknown.
func (c *conn) sendQueue() int {
	q, err := unix.IoctlGetInt(c.ev.fd, unix.SIOCOUTQ)
	if err != nil {
		return -1
	}
	return q
}

// pollInput reads and discards what a watcher's client sent (see
// watchAlive), on the goroutine the connection is lent to, and reports
// false once the client has closed or the loop has stopped.
func (c *conn) pollInput() bool {
	if c.hand.owner() == orphaned {
		return false
	}
	var buf [512]byte
	for {
		n, err := unix.Read(c.ev.fd, buf[:])
		switch {
		case n > 0:
			c.ctr.bytesRead.Add(int64(n))
			return true
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return true
		default:
			return false // EOF or a failed socket
		}
	}
}

// waitMem lists c, stopped by waitMemory with no reply waiting, to run
// again once the replies hold less than the limit: it gives back its
// reply buffer meanwhile, so that a connection waiting holds none.
// Connections whose replies were all taken before (served) go first: a
// client that reads is not queued behind ones that may never read.
func (l *loop) waitMem(c *conn) {
	c.dropLargeVal()
	if len(c.out) == 0 {
		l.srv.mem.out.put(c.out) // as idle: work takes one again
		c.out, c.sent, c.held = nil, 0, 0
	}
	c.account()
	if c.ev.memListed {
		return
	}
	c.ev.memListed = true
	l.srv.mem.outOOM.Add(1) // a retrieval made to wait (response_obj_oom)
	if c.ev.served {
		l.memWaitServed = append(l.memWaitServed, c)
	} else {
		l.memWait = append(l.memWait, c)
	}
}

// waitingMem reports whether connections wait for the replies to hold
// less.
func (l *loop) waitingMem() bool { return len(l.memWait)+len(l.memWaitServed) > 0 }

// watchMemory runs at the end of each wake-up: while the replies hold
// more than the limit it sweeps the loop's connections (memSweep); once
// they hold less, it runs the connections that waited, oldest first,
// those whose replies were taken before ahead of the others.
func (l *loop) watchMemory() {
	m := &l.srv.mem
	if m.outOver() {
		if !l.sweeping {
			l.sweeping = true // a new spell: what happened before does not count
			for _, c := range l.conns {
				c.ev.stuck = 0
			}
		}
		if l.now-l.memSwept >= int64(memSweepEvery) {
			l.memSwept = l.now
			l.memSweep()
		}
		return
	}
	l.sweeping = false
	if !l.waitingMem() {
		return
	}
	served, others := l.memWaitServed, l.memWait
	l.memWaitServed, l.memWait = nil, nil
	for _, c := range append(served, others...) {
		if l.conns[c.ev.fd] != c || !c.ev.memListed {
			continue // closed since
		}
		c.ev.memListed = false
		if !l.away(c) {
			l.work(c)
		}
	}
}

// memSweep closes the loop's connections whose replies have waited
// through stallLimit of the current spell past the limit without their
// client taking a byte of them (none written, none gone from the
// socket's send queue): the memory they hold makes every other
// connection wait. A client that reads, however slowly, keeps its
// connection.
func (l *loop) memSweep() {
	if l.srv.cfg.PeerExtensions {
		return // members' connections: see waitMemory
	}
	for _, c := range l.conns {
		if l.away(c) || !c.pending() {
			c.ev.stuck = 0
			continue
		}
		written := c.ctr.bytesWritten.Load()
		queued, err := unix.IoctlGetInt(c.ev.fd, unix.SIOCOUTQ)
		if err != nil {
			queued = -1
		}
		if c.ev.stuck == 0 || written != c.ev.written || queued < 0 || queued < c.ev.queued {
			c.ev.stuck = l.now + 1 // moved (or first seen): counts from now; never 0
		} else if l.now+1-c.ev.stuck >= int64(stallLimit) {
			l.srv.mem.evicted.Add(1)
			l.srv.log.Warn("connection closed: its replies waited unread while connections held more than their memory limit",
				"remote", c.raddr.String(), "waiting", len(c.out)-c.sent, "limit", l.srv.mem.limit)
			l.close(c)
			continue
		}
		c.ev.written, c.ev.queued = written, queued
	}
}
