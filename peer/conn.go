package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/internal/rawio"
	"shoal/protocol"
)

// maxKeptBuf: a write buffer that grew past this for a large value is
// dropped after use rather than kept per connection.
const maxKeptBuf = 256 << 10

// conn is one TCP connection with its queue of requests awaiting replies.
// Requests are queued and written under mu in the same order, so the n-th
// reply answers the n-th queued request; the opaque checks it.
type conn struct {
	c    *Client
	nc   net.Conn
	raw  syscall.RawConn // nc's socket, for flushQueued's non-blocking write; nil if none
	dead atomic.Bool     // broken is set: a fast check for Client.conn
	// replied is when the last reply was read (since Client.born): a
	// request that waited RequestTimeout fails the connection only if
	// no reply came for as long (quiet), or once it waited maxWaits
	// RequestTimeouts. Replies come in order, so while they come the
	// requests queued behind them advance: a peer sending a large batch
	// is slow, not gone; a paused one sends nothing.
	replied atomic.Int64

	// tryWrite's arguments and results for rawWrite (an allocation-free
	// callback); only the goroutine that set flushing uses them.
	wout     []byte
	wn       int
	werr     error
	rawWrite func(fd uintptr) bool

	mu       sync.Mutex // guards the fields below
	seq      uint32     // last opaque number handed out
	pending  []*request // queued, awaiting replies; pending[head] is next
	head     int
	broken   error // first error that broke the connection
	wbuf     []byte
	spare    []byte
	flushing bool // a caller is writing; others only append
	retired  bool // Reset took it from its slot: break it once pending empties
}

func newConn(c *Client, nc net.Conn) *conn {
	cn := &conn{c: c, nc: nc, wbuf: make([]byte, 0, 4096), spare: make([]byte, 0, 4096)}
	cn.replied.Store(int64(time.Since(c.born)))
	if sc, ok := nc.(syscall.Conn); ok {
		cn.raw, _ = sc.SyscallConn()
	}
	cn.rawWrite = cn.write1
	return cn
}

// enqueue queues r, appends its bytes and makes sure they get written: if
// no other caller is writing, this one writes until the buffer stays empty
// (so a burst of requests from many goroutines costs few writes). An error
// means the connection was already broken and r was not queued.
func (cn *conn) enqueue(r *request) error {
	cn.mu.Lock()
	if cn.broken != nil {
		err := cn.broken
		cn.mu.Unlock()
		return err
	}
	r.seq = cn.seq + 1
	cn.seq += r.seqs()
	cn.pending = append(cn.pending, r)
	cn.wbuf = r.encode(cn.wbuf)
	if cn.flushing {
		cn.mu.Unlock()
		return nil
	}
	cn.flushing = true
	// Yield once before writing: the request goroutines runnable on this
	// P (a forwarding node has one per client connection) append theirs
	// meanwhile and share this write, and the peer reads them in one
	// batch. Forwarded throughput with 32 connections went from 0.42–0.48×
	// to 0.51–0.62× of direct (BenchmarkForwarding); alone, Gosched
	// returns at once.
	cn.mu.Unlock()
	runtime.Gosched()
	cn.mu.Lock()
	cn.drain()
	return nil
}

// drain writes the buffer until it stays empty; cn.mu is held and flushing
// set by the caller. It unlocks cn.mu.
func (cn *conn) drain() {
	for len(cn.wbuf) > 0 && cn.broken == nil {
		out := cn.wbuf
		cn.wbuf = cn.spare[:0]
		cn.mu.Unlock()
		err := cn.writeAll(out)
		cn.mu.Lock()
		cn.spare = nil
		if cap(out) <= maxKeptBuf {
			cn.spare = out[:0]
		}
		if err != nil {
			cn.flushing = false
			cn.mu.Unlock()
			// What is queued, the reader fails.
			cn.fail(lost(err))
			return
		}
	}
	cn.flushing = false
	cn.mu.Unlock()
}

// writeAll writes out: first with one non-blocking write, which usually
// takes it all, then (the socket full) the rest blocking, with a deadline: a peer that stops
// reading must not hold this caller forever.
func (cn *conn) writeAll(out []byte) error {
	n, err := cn.tryWrite(out)
	if err != nil || n == len(out) {
		return err
	}
	if err = cn.nc.SetWriteDeadline(time.Now().Add(cn.c.cfg.RequestTimeout)); err == nil {
		_, err = cn.nc.Write(out[n:])
	}
	return err
}

// fail breaks the connection with err, unless it is broken already. The
// reader goroutine then fails every queued request with the first error.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	first := cn.broken == nil
	if first {
		cn.breakLocked(err)
	}
	cn.mu.Unlock()
	if first {
		abort(cn.nc)
	}
}

// abort closes nc discarding what its socket has not sent yet (SO_LINGER
// 0: a reset instead of a FIN). A connection is failed with requests
// still queued, and a plain close would leave their bytes to the kernel,
// which goes on retransmitting them: across a network cut, the peer gets
// them when the cut heals, seconds after this node gave up on them and
// sent them elsewhere, and runs them then. A forwarded set applied that
// late is a new write of an old value (e2e/history: a set given up on
// during a 9 s partition reached its primary 4 s after the heal and
// overwrote a write acknowledged since).
func abort(nc net.Conn) {
	raw := nc
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok { // TLS
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	nc.Close()
}

func lost(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: write: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrConnLost, err)
}

// peek returns the oldest queued request, or nil.
func (cn *conn) peek() *request {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.head == len(cn.pending) {
		return nil
	}
	return cn.pending[cn.head]
}

// pop removes the oldest queued request; the last one of a retired
// connection breaks it.
func (cn *conn) pop() {
	cn.mu.Lock()
	cn.pending[cn.head] = nil
	cn.head++
	switch {
	case cn.head == len(cn.pending):
		cn.pending, cn.head = cn.pending[:0], 0
	case cn.head > 64 && cn.head > len(cn.pending)/2:
		n := copy(cn.pending, cn.pending[cn.head:])
		clear(cn.pending[n:])
		cn.pending, cn.head = cn.pending[:n], 0
	}
	done := cn.endRetiredLocked()
	cn.mu.Unlock()
	if done {
		cn.nc.Close()
	}
}

// retire breaks cn now if nothing is queued on it, else once its queue
// empties (pop); ended reports that it is broken already (the caller
// need not watch it).
func (cn *conn) retire() (ended bool) {
	cn.mu.Lock()
	cn.retired = true
	broke := cn.endRetiredLocked()
	ended = cn.broken != nil
	cn.mu.Unlock()
	if broke {
		cn.nc.Close()
	}
	return ended
}

// endRetiredLocked breaks cn when it is retired and nothing is queued on
// it, reporting whether it did (the caller then closes nc); cn.mu is held.
func (cn *conn) endRetiredLocked() bool {
	if !cn.retired || cn.head != len(cn.pending) || cn.broken != nil {
		return false
	}
	cn.breakLocked(errRetired)
	return true
}

// breakLocked records err as what broke cn; cn.mu is held, cn.broken nil.
// Under the lock, so no request is queued after it; the caller closes nc.
func (cn *conn) breakLocked(err error) {
	cn.broken = err
	cn.dead.Store(true)
}

// readLoop matches replies to queued requests until the connection breaks,
// then fails whatever is still queued. It owns the ReplyReader.
func (c *Client) readLoop(cn *conn) {
	defer c.wg.Done()
	var src io.Reader = rawio.NewReader(cn.nc)
	if f := c.cfg.RepliesHandled; f != nil {
		src = handledReader{src, f}
	}
	rr := protocol.NewReplyReader(src, c.cfg.MaxValueSize)
	err := cn.readReplies(rr)
	cn.mu.Lock()
	if cn.broken == nil {
		cn.broken = err
		cn.dead.Store(true)
	}
	err = cn.broken
	queued := cn.pending[cn.head:]
	cn.pending, cn.head = nil, 0
	cn.mu.Unlock()
	if len(queued) > 0 {
		abort(cn.nc) // see abort: their bytes must not reach the peer later
	} else {
		cn.nc.Close()
	}
	if !errors.Is(err, ErrClosed) && err != errRetired {
		c.log.Warn("peer connection lost", "err", err, "failed_requests", len(queued))
	}
	for _, r := range queued {
		c.finish(r, err)
	}
	if f := c.cfg.RepliesHandled; f != nil {
		f()
	}
}

// handledReader calls handled before each read: the reply reader reads
// only once it has returned every reply it holds whole, so that is when
// the reader goroutine has handled them (Config.RepliesHandled).
type handledReader struct {
	r       io.Reader
	handled func()
}

func (h handledReader) Read(p []byte) (int, error) {
	h.handled()
	return h.r.Read(p)
}

// maxWaits bounds how many RequestTimeouts a request waits in all while
// replies keep coming: a peer answering each request just within the
// timeout would otherwise hold the ones queued behind for as many, and
// never be failed over.
const maxWaits = 4

// quiet is how long no reply came on cn, or since it was made.
func (cn *conn) quiet() time.Duration {
	return time.Since(cn.c.born) - time.Duration(cn.replied.Load())
}

func (cn *conn) readReplies(rr *protocol.ReplyReader) error {
	for {
		rep, err := rr.Next()
		if err != nil {
			if errors.Is(err, protocol.ErrBadReply) || errors.Is(err, protocol.ErrValueTooLarge) {
				return fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			return lost(err)
		}
		cn.replied.Store(int64(time.Since(cn.c.born)))
		r := cn.peek()
		if r == nil {
			return fmt.Errorf("%w: unsolicited %v reply", ErrProtocol, rep.Status)
		}
		if r.kind == kindMulti {
			done, err := r.multiReply(rep)
			if err != nil {
				return err
			}
			if done {
				cn.pop()
				cn.c.noteRoom(r)
				cn.c.finish(r, nil)
			}
			continue
		}
		if !rep.Status.IsError() {
			if op, ok := rep.Uint('O'); !ok || op != uint64(r.seq) {
				return fmt.Errorf("%w: reply opaque %q, want %d", ErrProtocol, rep.Opaque, r.seq)
			}
		}
		cn.pop()
		if r.async() {
			r.err = r.fill(rep)
			cn.c.noteRoom(r)
			cn.c.asyncDone(r, nil)
			continue
		}
		if r.state.CompareAndSwap(stateWaiting, stateDone) {
			r.err = r.fill(rep)
			cn.c.noteRoom(r)
			r.done <- struct{}{}
		} else {
			cn.c.pool.Put(r.reset())
		}
	}
}

// noteRoom remembers that the peer refused r's room (mg A answered
// protocol.ReplyInvalidFlag, ErrInvalidFlag: a peer without it): that request fails,
// as any error reply, and the next ones go without A.
func (c *Client) noteRoom(r *request) {
	if r.get.Room > 0 && errors.Is(r.err, ErrInvalidFlag) {
		c.noRoom.Store(true)
	}
}

// room is the Room of a get's options as this peer takes it.
func (c *Client) room(opts GetOptions) GetOptions {
	if c.noRoom.Load() {
		opts.Room = 0
	}
	return opts
}

// finish completes r with err, or recycles it if its caller has gone.
func (c *Client) finish(r *request, err error) {
	if r.async() {
		c.asyncDone(r, err)
		return
	}
	if r.state.CompareAndSwap(stateWaiting, stateDone) {
		if err != nil {
			r.err = err // a broken connection outranks an error line in a batch
		}
		r.done <- struct{}{}
		return
	}
	c.pool.Put(r.reset())
}
