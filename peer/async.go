package peer

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"shoal/internal/rawio"
	"shoal/protocol"
)

// Asynchronous gets, sets and deletes, for a caller that must not wait: an event
// loop serving many client connections on one goroutine. GetAsync and
// SetAsync queue the request and return; the connection's reader
// goroutine calls the handler once the reply is parsed (or the connection
// fails). No goroutine waits per request, and the request struct is
// pooled as for Get, Set and Delete (DeleteAsync likewise).
//
// Writes: GetAsync (SetAsync) only appends the request to the connection's buffer.
// The caller calls Flush once it has queued what it has (an event loop:
// at the end of each wake-up), so that the requests of many client
// connections go out in one write. A writer already at work (a
// synchronous request's caller) takes them along.
//
// Timeouts: no goroutine waits with a timer, so a sweeper goroutine per
// Client (started by the first GetAsync, stopped by Close) fails a
// connection whose oldest queued request is older than RequestTimeout, as
// a synchronous request's timeout does: every request queued on it fails
// with ErrTimeout.
//
// No context: a request queued on a pipelined connection cannot be taken
// back (the replies come in order, and the ones behind it wait for its
// own), so it ends by its reply, by its connection's failure or by
// RequestTimeout, whatever its caller's context does meanwhile. The
// caller keeps that context for what it does with the outcome (cluster's
// asyncGet: whether an error blames the peer, and the walk it falls back
// to).

// ErrNotConnected: GetAsync (SetAsync) found no live connection, and
// dialling would block; use Get (Set), which dials.
var ErrNotConnected = errors.New("peer: not connected")

// GetHandler receives the outcome of a GetAsync, as Get would return it.
//
// GetDone is called exactly once per queued request, on the reader
// goroutine of the connection it was queued on (which also fails what is
// queued when the connection breaks or the Client closes), never on the
// caller of GetAsync, though possibly before GetAsync returns. It must not block for long: the replies behind it wait. it.Value
// is appended to GetOptions.Buf[:0] and belongs to the handler.
type GetHandler interface {
	GetDone(it Item, hit bool, err error)
}

// SetHandler receives the outcome of a SetAsync, as Set would return it,
// under GetHandler's contract: SetDone is called exactly once per queued
// request, on the reader goroutine, never on the caller of SetAsync
// (though possibly before it returns), and must not block for long.
type SetHandler interface {
	SetDone(res Result, cas uint64, err error)
}

// DeleteHandler receives the outcome of a DeleteAsync, as Delete would
// return it, under GetHandler's contract.
type DeleteHandler interface {
	DeleteDone(res Result, err error)
}

// sweepTicks is how many sweeper ticks make RequestTimeout: a request
// times out between RequestTimeout and 5/4 of it.
const sweepTicks = 4

// GetAsync queues a get of key (as Get) whose outcome goes to h. An error
// means nothing was queued and h will not be called: ErrBadKey, ErrClosed,
// ErrNotConnected (no live connection: dialling is Get's job), or the
// error that broke the connection. The request is written by the next
// Flush, or by a writer already at work. key and opts.Buf are not
// retained after GetAsync returns, but for Buf's array, which the value
// is appended to.
func (c *Client) GetAsync(key []byte, opts GetOptions, h GetHandler) error {
	r := c.getRequest(kindGet)
	r.key, r.get, r.h = key, c.room(opts), h
	return c.queueAsync(r)
}

// SetAsync queues a set of value under key (as Set) whose outcome goes to
// h, under GetAsync's terms: an error means nothing was queued and h will
// not be called; key and value are copied into the connection's buffer
// and not retained after SetAsync returns.
func (c *Client) SetAsync(key, value []byte, opts SetOptions, h SetHandler) error {
	r := c.getRequest(kindSet)
	r.key, r.value, r.set, r.sh = key, value, opts, h
	return c.queueAsync(r)
}

// DeleteAsync queues a delete of key (as Delete) whose outcome goes to h,
// under SetAsync's terms.
func (c *Client) DeleteAsync(key []byte, opts DeleteOptions, h DeleteHandler) error {
	r := c.getRequest(kindDelete)
	r.key, r.del, r.dh = key, opts, h
	return c.queueAsync(r)
}

// queueAsync queues asynchronous request r on a live connection, or
// recycles it and returns why it could not.
func (c *Client) queueAsync(r *request) error {
	err := checkKey(r.key)
	switch {
	case err != nil:
	case c.closed.Load():
		err = ErrClosed
	default:
		if !c.sweeping.Load() {
			c.startSweeper()
		}
		// No rotation: the requests queued between two Flushes share one
		// write and one batch of replies on the peer's side.
		i := int(c.next.Load() % uint32(len(c.slots)))
		cn := c.live(i)
		for j := 1; cn == nil && j < len(c.slots); j++ {
			cn = c.live((i + j) % len(c.slots))
		}
		err = ErrNotConnected
		if cn != nil {
			err = cn.queue(r)
		}
	}
	if err != nil {
		c.pool.Put(r.reset())
		return err
	}
	c.requests.Add(1)
	c.inFlight.Add(1)
	return nil
}

// Flush writes what GetAsync queued on every connection of the client,
// without waiting on the network: what the socket does not take at once
// goes on from a goroutine of the client.
func (c *Client) Flush() {
	for i := range c.slots {
		if cn := c.live(i); cn != nil {
			cn.flushQueued()
		}
	}
}

// live returns slot i's connection if it is up, without dialling.
func (c *Client) live(i int) *conn {
	s := &c.slots[i]
	s.mu.Lock()
	cn := s.cn
	s.mu.Unlock()
	if cn == nil || cn.dead.Load() {
		return nil
	}
	return cn
}

// asyncDone completes an asynchronous request and recycles it; r has been
// taken off its connection's queue.
func (c *Client) asyncDone(r *request, err error) {
	h, sh, dh, it, status := r.h, r.sh, r.dh, r.item, r.status
	if err == nil {
		err = r.err
	}
	c.pool.Put(r.reset())
	c.inFlight.Add(-1)
	var hit bool
	var res Result
	if err == nil {
		switch {
		case sh != nil:
			res, err = result("ms", status)
		case dh != nil:
			res, err = result("md", status)
		case status == protocol.StatusVA:
			hit = true
		case status == protocol.StatusEN:
			it = Item{}
		case status == protocol.StatusHD && it.Size > 0:
			it = Item{Size: it.Size}
			h.GetDone(it, false, ErrNoRoom) // the peer answered: no failure
			return
		default:
			err = unexpected("mg", status)
		}
	}
	if err != nil {
		it, res = Item{}, 0
		c.failures.Add(1)
		if errors.Is(err, ErrTimeout) {
			c.timeouts.Add(1)
		}
	}
	switch {
	case sh != nil:
		sh.SetDone(res, it.CAS, err)
	case dh != nil:
		dh.DeleteDone(res, err)
	default:
		h.GetDone(it, hit, err)
	}
}

// queue queues r and appends its bytes, leaving them for flushQueued (or
// a writer at work). An error means the connection is broken and r was
// not queued.
func (cn *conn) queue(r *request) error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.broken != nil {
		return cn.broken
	}
	r.seq = cn.seq + 1
	cn.seq += r.seqs()
	cn.pending = append(cn.pending, r)
	cn.wbuf = r.encode(cn.wbuf)
	return nil
}

// flushQueued writes the buffered requests with non-blocking writes
// unless a writer is at work, until the buffer stays empty (requests
// queued meanwhile by other loops go too); if the socket is full, the rest
// is left to a writer goroutine (drain).
func (cn *conn) flushQueued() {
	cn.mu.Lock()
	if cn.flushing || len(cn.wbuf) == 0 || cn.broken != nil {
		cn.mu.Unlock()
		return
	}
	cn.flushing = true
	for len(cn.wbuf) > 0 && cn.broken == nil {
		out := cn.wbuf
		cn.wbuf, cn.spare = cn.spare[:0], nil
		cn.mu.Unlock()
		n, err := cn.tryWrite(out)
		cn.mu.Lock()
		if err != nil {
			cn.flushing = false
			cn.mu.Unlock()
			cn.fail(lost(err)) // the reader fails what is queued
			return
		}
		if n < len(out) {
			// Rare: the peer reads slower than we write. Keep the order.
			cn.wbuf = append(out[n:len(out):len(out)], cn.wbuf...)
			cn.mu.Unlock()
			cn.c.wg.Add(1)
			go func() {
				defer cn.c.wg.Done()
				cn.mu.Lock()
				cn.drain()
			}()
			return
		}
		if cap(out) <= maxKeptBuf {
			cn.spare = out[:0]
		}
	}
	cn.flushing = false
	cn.mu.Unlock()
}

// tryWrite writes p with one non-blocking write and reports how much the
// socket took. Without a raw socket (not TCP), it writes none.
func (cn *conn) tryWrite(p []byte) (int, error) {
	if cn.raw == nil {
		return 0, nil
	}
	cn.wout, cn.wn, cn.werr = p, 0, nil
	err := cn.raw.Write(cn.rawWrite)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The deadline drain set for its last write: it guards blocking
		// writes only.
		if err = cn.nc.SetWriteDeadline(time.Time{}); err == nil {
			err = cn.raw.Write(cn.rawWrite)
		}
	}
	if err != nil {
		cn.wout = nil
		return 0, err
	}
	n, err := cn.wn, cn.werr
	cn.wout = nil
	if err == syscall.EAGAIN || err == syscall.EINTR {
		err = nil
	}
	return n, err
}

// write1 is tryWrite's callback (cn.rawWrite, a method value made once
// per connection): one write of wout, whatever the socket takes.
func (cn *conn) write1(fd uintptr) bool {
	cn.wn, cn.werr = rawio.Write(fd, cn.wout)
	return true
}

// startSweeper starts the client's timeout sweeper once, unless the
// client is closed.
func (c *Client) startSweeper() {
	c.sweepMu.Lock()
	defer c.sweepMu.Unlock()
	if c.sweeping.Load() || c.closed.Load() {
		return
	}
	c.sweepStop = make(chan struct{})
	c.sweeping.Store(true)
	c.wg.Add(1)
	go c.sweep(c.sweepStop)
}

// sweep fails, every RequestTimeout/sweepTicks, the connections whose
// oldest queued request has waited RequestTimeout while no reply came
// for as long (conn.quiet), or maxWaits RequestTimeouts in all, pooled or
// retired.
func (c *Client) sweep(stop <-chan struct{}) {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.RequestTimeout / sweepTicks)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now := c.ticks.Add(1)
		late := func(cn *conn) bool {
			return cn.oldestBefore(now-sweepTicks) && (cn.quiet() >= c.cfg.RequestTimeout || cn.oldestBefore(now-maxWaits*sweepTicks))
		}
		timeout := func(cn *conn) {
			cn.fail(fmt.Errorf("%w: no reply from %s within %v", ErrTimeout, c.cfg.Addr, c.cfg.RequestTimeout))
		}
		for i := range c.slots {
			if cn := c.live(i); cn != nil && late(cn) {
				timeout(cn)
			}
		}
		for _, cn := range c.retiredConns() {
			if late(cn) {
				timeout(cn)
			}
		}
	}
}

// oldestBefore reports whether the oldest queued request was queued
// before sweeper tick t.
func (cn *conn) oldestBefore(t int64) bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.head < len(cn.pending) && cn.pending[cn.head].stamp < t
}
