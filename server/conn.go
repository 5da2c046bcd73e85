package server

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"shoal/protocol"
	"shoal/store"
)

// flushAt bounds the reply buffer: a multi-get of thousands of keys is
// written out in pieces rather than held whole.
const flushAt = 64 << 10

// conn is one client connection. Two drivers move its bytes: a goroutine
// per connection over a net.Conn (serve, blocking reads and writes), or an
// event loop over a non-blocking socket (eventloop_linux.go). Both run the
// commands through process, exec and flush below, so the command code does
// not know which one it runs under.
type conn struct {
	srv   *Server
	cache Cache
	nc    net.Conn  // goroutine driver; nil under an event loop
	w     io.Writer // where flush writes: nc, or the loop's non-blocking socket
	id    uint64
	raddr net.Addr // for stats conns
	laddr net.Addr
	r     *protocol.Reader
	out   []byte // replies; out[:sent] are written, the rest not yet
	sent  int
	// held is the part of out that flush has taken on: it is sent even if
	// a later error drops the replies not yet flushed. Always 0 under the
	// goroutine driver, whose flush writes everything.
	held int
	val  []byte // scratch for one value read from the cache
	err  error  // first write error; the connection closes after it
	quit bool
	// saslAuthed: SASL authentication succeeded (Config.Authenticate).
	saslAuthed bool
	// closeWhy is why the connection closes, for watch's conn_close
	// (closeNormal unless set by whoever drives it). In the padding
	// before last: the fields after keep their offsets.
	closeWhy uint8
	// last is the unix second of the last command, from the cache's
	// coarse clock: as memcached counts idle_timeout, a connection that
	// sends bytes but no whole command is idle.
	last atomic.Int64
	// phase is what stats conns shows as the state (phase.go); written
	// by the connection's own goroutine, read by stats.
	phase atomic.Uint32
	// authed: the client passed -Y's authentication (Config.Auth).
	authed bool
	// more is a retrieval stopped for its replies to drain (getKeys).
	more moreKeys
	// mem is what the connection holds, as last accounted in srv.mem.
	mem heldMem
	// dropped is set by Server.DropConns: run nothing more.
	dropped atomic.Bool
	ctr     counters
	opt     options // option structs of the running command
	// sampleIn counts down the commands until the next latency sample.
	sampleIn int32
	// prior is what the write being run found under its key, while
	// someone watches fetchers: its value length plus one, 0 for none
	// (peekPrior). In the padding after sampleIn.
	prior int32
	ev    evState // event loop driver's state; zero under the goroutine driver
	// blocked: the goroutine driver's write of a large reply, as the
	// reply watcher sees it (connblock.go).
	blocked blockedWrite
	// valHeld: the length of a value the goroutine driver is writing
	// straight from its buffer (writeValue), or of the values a retrieval
	// admitted will answer (admit), counted with the replies.
	valHeld int
	// room: the bytes of room c.req took for its value (connroom.go);
	// wants: the size an owner gave for a value that did not fit, which
	// the get's next run takes room for.
	room  int64
	wants int
	// inBatch: a retrieval off its loop is in a Cache's GetMulti, whose
	// hand-over of values must not wait on the socket (connroom.go).
	inBatch bool
	// ctx is what the connection's calls into the cache wait under
	// (Cache): cancelled by DropConns, by Shutdown (its parent is the
	// server's), and once the connection has ended.
	ctx    context.Context
	cancel context.CancelFunc

	// req is the connection's one Request, for every Cache.Start it
	// makes (request.go). parks: the connection is under an event loop
	// over a Cache that may wait (Server.remote), and doneReq is c.done,
	// made once: the completion of a request that parks the connection.
	// hand is the state shared with the goroutine a command away from the
	// loop runs on (async.go).
	parks   bool
	req     *Request
	doneReq func(*Request)
	hand    handoff
	// gets holds the pipelined gets answered together (coalesce.go).
	gets coalesced
}

// options holds the option structs of the command being run. They live on
// the connection because passing a pointer through the Cache interface
// would otherwise move them to the heap on every request.
type options struct {
	get   store.GetOptions
	set   store.SetOptions
	del   store.DeleteOptions
	arith store.ArithOptions
}

// newConn returns a connection; its driver calls setIO before serving it.
func newConn(s *Server, raddr, laddr net.Addr) *conn {
	c := &conn{srv: s, cache: s.cache, raddr: raddr, laddr: laddr, id: s.nextID.Add(1), sampleIn: nextGap()}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.req = new(Request)
	c.last.Store(c.srv.items.Now())
	return c
}

// setIO sets where the connection reads commands and writes replies.
func (c *conn) setIO(src io.Reader, w io.Writer) {
	c.w = w
	c.r = protocol.NewReader(src, c.srv.cfg.MaxItemSize)
	c.r.UseMemory(&c.srv.mem.bufs, &c.srv.mem)
	c.r.SetBinding(c.srv.cfg.Binding)
	if c.srv.cfg.PeerExtensions {
		c.r.AcceptPeerExtensions()
	}
}

// connReader flushes pending replies before every read from the socket:
// all buffered commands run first, then their replies go out in one write.
type connReader struct{ c *conn }

func (cr connReader) Read(p []byte) (int, error) {
	c := cr.c
	if c.flush() != nil {
		return 0, c.err
	}
	if cap(c.out) > outBase {
		c.out = make([]byte, 0, outBase) // grown for a large reply, now written
	}
	c.account()
	c.waitInput()
	if d := c.srv.cfg.IdleTimeout; d > 0 {
		// From the last command, not the last byte: a client sending a
		// byte a second is idle (memcached's count).
		c.nc.SetReadDeadline(time.Unix(c.last.Load(), 0).Add(d + time.Second))
	}
	n, err := c.nc.Read(p)
	if n > 0 {
		c.phase.Store(phaseParse)
	}
	c.ctr.bytesRead.Add(int64(n))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.srv.idleKicks.Add(1)
		c.closeWhy = closeIdle
	}
	return n, err
}

// serve is the goroutine driver: it runs the connection until it ends.
func (c *conn) serve() {
	defer c.nc.Close()
	c.out = make([]byte, 0, outBase)
	c.process()
	c.flush()
}

// process runs commands until the connection ends (false) or, under the
// event loop, until no complete command is buffered and the socket has no
// more input, or replies wait for the socket to drain, or a command left
// the loop (parked; see owner and async.go), or the replies of all
// connections hold more than their limit (waitMemory) (true).
func (c *conn) process() bool {
	if c.more.cmd != nil && !c.getKeys() {
		c.ev.stalled = true
		return true
	}
	for !c.quit && c.err == nil {
		cmd, err := c.nextCommand()
		if err != nil {
			if err == protocol.ErrAgain {
				return true
			}
			var pe *protocol.Error
			if errors.As(err, &pe) && c.needsAuth() {
				c.line(replyUnauthenticated) // memcached: not a set line
				continue
			}
			if errors.As(err, &pe) {
				if c.parks && (pe.TooLarge || pe.NoMemory) && pe.Op == protocol.OpSet && !c.cache.Inline(pe.Key) {
					c.offload(nil, pe) // its delete may wait on a peer
					return true
				}
				c.protocolError(pe)
				continue
			}
			c.logClose(err)
			return false
		}
		if c.dropped.Load() {
			return false // buffered commands of a dropped connection do not run
		}
		if c.ev.memCmd == nil {
			c.touched()
			if c.needsAuth() {
				c.authenticate(cmd)
				continue
			}
		}
		c.ev.memCmd, c.ev.small = nil, false
		switch {
		case !retrievesValues(cmd):
		case c.nc != nil:
			c.admit(cmd) // the goroutine driver: blocks (connblock.go)
		case c.srv.mem.outOver():
			if c.ev.small = c.fitsBase(cmd); !c.ev.small && c.waitMemory() {
				c.ev.memCmd = cmd // run first once the replies hold less (connMem)
				return true
			}
		}
		if c.parks && !c.ev.small && c.coalesce(cmd) {
			c.offload(&c.gets.cmd, nil) // gets that wait on peers, answered together
			return true
		}
		if c.parks && !c.inline(cmd) || c.ev.loop != nil && !c.hand.running && c.lists(cmd) {
			c.offload(cmd, nil) // may wait on a peer, or list every item
			return true
		}
		if c.run(cmd); c.hand.owner() == parked {
			return true // a get is pending
		}
		if c.valHeld != 0 {
			c.valHeld = 0 // admit's count: the replies now hold the values
			c.account()
		}
		if c.more.cmd != nil {
			c.ev.stalled = true // a retrieval waits for its replies to drain
			return true
		}
		if len(c.out) >= flushAt {
			if c.flush(); c.pending() {
				c.ev.stalled = true // under an event loop: wait for EPOLLOUT
				return true
			}
		}
	}
	return false
}

// nextCommand is the command a retrieval stopped by waitMemory left (it
// runs now), or the reader's next.
func (c *conn) nextCommand() (protocol.Command, error) {
	if c.ev.memCmd != nil {
		return c.ev.memCmd, nil
	}
	return c.r.Next()
}

// retrievesValues reports whether cmd may answer with values, whose
// replies waitMemory holds back: get, gets, gat, gats, mg and the binary
// gets. Every other reply is small.
func retrievesValues(cmd protocol.Command) bool {
	switch cmd := cmd.(type) {
	case *protocol.Retrieval, *protocol.MetaGet:
		return true
	case *protocol.Binary:
		switch cmd.Base() {
		case protocol.BinGet, protocol.BinGetK, protocol.BinGAT, protocol.BinGATK:
			return true
		}
	}
	return false
}

// protocolError answers a malformed request and keeps the connection, as
// memcached does.
func (c *conn) protocolError(pe *protocol.Error) {
	if pe.NoMemory {
		c.ctr.storeNoMemory.Add(1)
	}
	if pe.TooLarge {
		c.ctr.storeTooLarge.Add(1)
	}
	if pe.TooLarge || pe.NoMemory {
		// memcached drops the old value so a failed set cannot leave a
		// stale one behind (refused does, for OpSet).
		res := store.TooLarge
		if pe.NoMemory {
			res = store.NoMemory
		}
		c.refused(pe.Op, pe.Key, res)
	}
	if !pe.NoReply {
		c.line(pe.Reply)
	}
}

func (c *conn) logClose(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	if c.closeWhy == closeNormal {
		c.closeWhy = closeError // memcached: only the end of the stream and quit close normally
	}
	if c.srv.verbosity.Load() > 0 {
		c.srv.log.Info("connection closed", "remote", c.raddr.String(), "err", err)
	}
}

// flush writes the pending replies: all of them under the goroutine
// driver, as many as the socket takes under the event loop (the rest wait
// for it to drain; see pending). A write error is kept and ends the
// connection.
func (c *conn) flush() error {
	if c.sent == len(c.out) || c.err != nil {
		return c.err
	}
	if c.nc != nil && len(c.out)-c.sent > writeChunk {
		return c.flushBlocking()
	}
	return c.wrote(c.w.Write(c.out[c.sent:]))
}

// wrote records that n bytes of the pending replies went out, and the
// write's error: flush's, or a loop's batched send (sendAll).
func (c *conn) wrote(n int, err error) error {
	c.ctr.bytesWritten.Add(int64(n))
	c.sent += n
	if err != nil {
		c.err = err
	}
	if c.sent == len(c.out) || err != nil {
		c.out, c.sent = c.out[:0], 0
	}
	c.held = len(c.out)
	return err
}

// writeValue writes as much of a large value as the socket takes now
// (all of it, on the goroutine driver), straight from its buffer, after
// the replies before it, and returns the rest, which the caller copies
// into the replies to wait.
func (c *conn) writeValue(val []byte) []byte {
	if c.pending() || c.err != nil {
		return val
	}
	if c.nc != nil { // the goroutine driver: its writes block
		c.valHeld = len(val)
		c.account()
		n := c.writeChunks(val)
		c.valHeld = 0
		c.account()
		if c.err != nil {
			return nil // the connection ends: nothing to keep
		}
		return val[n:]
	}
	n, err := c.w.Write(val)
	c.ctr.bytesWritten.Add(int64(n))
	if err != nil {
		c.err = err
	}
	return val[n:]
}

// pending reports replies a non-blocking write left unwritten.
func (c *conn) pending() bool { return c.sent < len(c.out) }

// dropUnflushed drops the replies not yet handed to flush, as memcached
// drops the unsent replies of a request that fails part way.
func (c *conn) dropUnflushed() { c.out = c.out[:c.held] }

// line appends one reply line and its "\r\n".
func (c *conn) line(s string) {
	c.out = append(c.out, s...)
	c.out = append(c.out, '\r', '\n')
}

// reply appends s unless the command asked for noreply.
func (c *conn) reply(noreply bool, s string) {
	if !noreply {
		c.line(s)
	}
}

// needsAuth reports that the connection must authenticate first (-Y).
func (c *conn) needsAuth() bool { return c.srv.cfg.Auth != nil && !c.authed }
