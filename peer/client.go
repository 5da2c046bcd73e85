package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config describes a Client. The zero value of each field but Addr means
// its default.
type Config struct {
	// Addr is the peer's host:port.
	Addr string
	// Conns is the number of pooled connections. Zero means 2.
	Conns int
	// DialTimeout bounds a connect. Zero means 1 s.
	DialTimeout time.Duration
	// RequestTimeout bounds the wait for a reply, from the moment the
	// request is queued. Zero means 1 s.
	RequestTimeout time.Duration
	// MaxValueSize bounds a value read back; a larger one breaks the
	// connection with ErrProtocol. Zero means 64 MiB.
	MaxValueSize int
	// Logger receives connection state changes (down, up, lost); nil
	// discards them.
	Logger *slog.Logger
	// Handshake, when not nil, runs on every connection the client dials
	// before anything else is sent on it (a peer port's authentication,
	// TLS: peerauth.Auth.Client), and returns the connection to use,
	// within DialTimeout. A failure closes the connection and fails with
	// ErrHandshake, or ErrTimeout when the peer did not answer in time. A
	// connection it returns that is not a socket (TLS) is always written
	// with blocking writes.
	Handshake func(ctx context.Context, nc net.Conn) (net.Conn, error)
	// RepliesHandled, when set, is called on a connection's reader
	// goroutine each time it has handled every reply it read, before it
	// reads (and perhaps waits) for more, and once it has failed what a
	// broken connection had queued: a handler that leaves work of its
	// completions for later (the server's Batch, sending the client
	// replies of a read's completions together) does it there.
	RepliesHandled func()
}

// Validate reports a config the client cannot use.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return fmt.Errorf("%w: empty address", ErrConfig)
	case c.Conns < 0:
		return fmt.Errorf("%w: negative pool size", ErrConfig)
	case c.DialTimeout < 0 || c.RequestTimeout < 0:
		return fmt.Errorf("%w: negative timeout", ErrConfig)
	case c.MaxValueSize < 0:
		return fmt.Errorf("%w: negative max value size", ErrConfig)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: address %q: %v", ErrConfig, c.Addr, err)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Conns == 0 {
		c.Conns = 2
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = time.Second
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = 64 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Client talks to one peer. Its methods are safe for concurrent use; many
// goroutines share its connections, their requests pipelined.
type Client struct {
	cfg    Config
	log    *slog.Logger
	slots  []slot
	next   atomic.Uint32
	pool   sync.Pool // *request
	closed atomic.Bool
	down   atomic.Bool // last dial was refused: log only the changes
	// refused: the last handshake failed: log only the changes
	refused atomic.Bool
	// noRoom: the peer refused mg A (a shoal from before it, during a
	// rolling upgrade): GetOptions.Room is not sent to it again.
	noRoom atomic.Bool
	wg     sync.WaitGroup

	requests, failures, timeouts, redials atomic.Uint64
	inFlight                              atomic.Int64
	// born is the origin of conn.replied's monotonic times.
	born time.Time

	// The timeout sweeper of asynchronous requests (async.go): ticks
	// counts its periods, requests are stamped with it when queued.
	ticks    atomic.Int64
	sweeping atomic.Bool
	// sweepMu orders starting the sweeper against Close.
	sweepMu   sync.Mutex
	sweepStop chan struct{}
	// retired: the connections Reset took from their slots, until they
	// end; the sweeper and Close see them as the pooled ones.
	retiredMu sync.Mutex
	retired   []*conn
}

// slot is one pooled connection, dialled on first use and after it breaks.
type slot struct {
	mu     sync.Mutex // guards the fields below
	cn     *conn
	dialed bool
}

// New returns a client for cfg. It does no I/O: connections are dialled by
// the first requests.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, log: cfg.Logger.With("peer", cfg.Addr), slots: make([]slot, cfg.Conns), born: time.Now()}
	c.pool.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return &request{done: make(chan struct{}, 1), timer: t}
	}
	return c, nil
}

// Addr is the peer's address.
func (c *Client) Addr() string { return c.cfg.Addr }

// Close closes every connection, fails the requests in flight with
// ErrClosed, and returns once the reader goroutines have exited. Later
// calls fail with ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.sweepMu.Lock()
	c.closed.Store(true)
	if c.sweepStop != nil {
		close(c.sweepStop)
		c.sweepStop = nil
	}
	c.sweepMu.Unlock()
	c.takeConns(func(cn *conn) { cn.fail(ErrClosed) })
	for _, cn := range c.retiredConns() {
		cn.fail(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

// Reset retires every pooled connection: the next requests dial afresh,
// and each old connection is closed once the requests already queued on
// it are answered (or time out, as they would have). For a peer that
// answers again after a network cut: a connection from before it may
// wait out TCP's retransmission backoff for seconds after the heal.
// Failing those requests instead would count against a peer that may be
// answering them: e2e/history saw one such failure mark the member down
// again, for a second, right after it came back.
func (c *Client) Reset() {
	c.takeConns(func(cn *conn) {
		if cn.retire() {
			return
		}
		c.retiredMu.Lock()
		c.retired = append(c.retired, cn)
		c.retiredMu.Unlock()
		if c.closed.Load() {
			cn.fail(ErrClosed) // Close may have looked already
		}
	})
}

// retiredConns returns the retired connections still open, and forgets
// those that ended.
func (c *Client) retiredConns() []*conn {
	c.retiredMu.Lock()
	defer c.retiredMu.Unlock()
	open := c.retired[:0]
	for _, cn := range c.retired {
		if !cn.dead.Load() {
			open = append(open, cn)
		}
	}
	clear(c.retired[len(open):])
	c.retired = open
	return slices.Clone(open)
}

// takeConns empties every slot, handing each connection it held to f.
func (c *Client) takeConns(f func(*conn)) {
	for i := range c.slots {
		s := &c.slots[i]
		s.mu.Lock()
		cn := s.cn
		s.cn = nil
		s.mu.Unlock()
		if cn != nil {
			f(cn)
		}
	}
}

// errRetired breaks a connection that Reset retired once its queue is
// empty; no request sees it but one that raced the retirement, which
// roundTrip then sends on a fresh connection.
var errRetired = fmt.Errorf("%w: retired after the peer came back", ErrConnLost)

// Stats returns a snapshot of the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests: c.requests.Load(),
		Failures: c.failures.Load(),
		Timeouts: c.timeouts.Load(),
		Redials:  c.redials.Load(),
		InFlight: c.inFlight.Load(),
	}
}

// conn returns slot i's live connection, dialling it when there is none.
// Callers of the same slot wait for one dial.
func (c *Client) conn(ctx context.Context, i int) (*conn, error) {
	s := &c.slots[i]
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if s.cn != nil && !s.cn.dead.Load() {
		return s.cn, nil
	}
	s.cn = nil
	if s.dialed {
		c.redials.Add(1)
	}
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if c.closed.Load() {
		nc.Close()
		return nil, ErrClosed
	}
	if c.down.Swap(false) {
		c.log.Info("peer up")
	}
	s.dialed = true
	s.cn = newConn(c, nc)
	c.wg.Add(1)
	go c.readLoop(s.cn)
	return s.cn, nil
}

// dial connects to the peer and runs the handshake, if any.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.cfg.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return nil, c.dialError(ctx, err)
	}
	if c.cfg.Handshake == nil {
		return nc, nil
	}
	// The handshake is part of connecting: a peer that accepts but does
	// not answer (a stopped process: its kernel still accepts) times out
	// as a connect does.
	hctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	hc, err := c.cfg.Handshake(hctx, nc)
	timedOut := hctx.Err() != nil
	cancel()
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ne net.Error
		if timedOut || errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w: handshake with %s: %w", ErrTimeout, c.cfg.Addr, err)
		}
		if !c.refused.Swap(true) {
			c.log.Warn("peer refused: handshake failed", "err", err)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrHandshake, c.cfg.Addr, err)
	}
	if c.refused.Swap(false) {
		c.log.Info("peer handshake succeeds again")
	}
	return hc, nil
}

// dialError classifies a failed connect: refused is the down signal;
// any other failure but the caller's own cancel is ErrTimeout or
// ErrUnreachable.
func (c *Client) dialError(ctx context.Context, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		if !c.down.Swap(true) {
			c.log.Warn("peer down: connection refused")
		}
		return fmt.Errorf("%w: %s", ErrDown, c.cfg.Addr)
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: dial %s", ErrTimeout, c.cfg.Addr)
	}
	return fmt.Errorf("%w: dial %s: %w", ErrUnreachable, c.cfg.Addr, err)
}

func (c *Client) getRequest(k kind) *request {
	r := c.pool.Get().(*request)
	r.kind, r.err = k, nil
	r.stamp = c.ticks.Load()
	r.state.Store(stateWaiting)
	return r
}

// do sends r and waits for its reply. When it returns, r's outputs are
// set and r is the caller's to put back with c.pool.Put(r.reset()) —
// unless abandoned: then the reader goroutine recycles r once its reply or
// failure arrives, and the caller must not touch r again.
func (c *Client) do(ctx context.Context, r *request) (abandoned bool, err error) {
	c.requests.Add(1)
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	abandoned, err = c.roundTrip(ctx, r)
	if err != nil {
		c.failures.Add(1)
		if errors.Is(err, ErrTimeout) {
			c.timeouts.Add(1)
		}
	}
	return abandoned, err
}

// release puts r back in the pool unless its caller abandoned it.
func (c *Client) release(r *request, abandoned bool) {
	if !abandoned {
		c.pool.Put(r.reset())
	}
}

func (c *Client) roundTrip(ctx context.Context, r *request) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	i := int(c.next.Add(1) % uint32(len(c.slots)))
	var cn *conn
	var err error
	// A connection that broke before our request was queued carried none
	// of it: one redial is safe.
	for range 2 {
		if cn, err = c.conn(ctx, i); err != nil {
			return false, err
		}
		if err = cn.enqueue(r); err == nil {
			break
		}
	}
	if err != nil {
		return false, err
	}
	r.timer.Reset(c.cfg.RequestTimeout)
	queued := time.Now()
	for {
		select {
		case <-r.done:
			r.timer.Stop()
			return false, r.err
		case <-r.timer.C:
			quiet, waited := cn.quiet(), time.Since(queued)
			if quiet < c.cfg.RequestTimeout && waited < maxWaits*c.cfg.RequestTimeout {
				// The peer answers the requests queued before this one
				// (in order): it is slow, not gone.
				r.timer.Reset(min(c.cfg.RequestTimeout-quiet, maxWaits*c.cfg.RequestTimeout-waited))
				continue
			}
			if r.state.CompareAndSwap(stateWaiting, stateAbandoned) {
				err := fmt.Errorf("%w: no reply from %s within %v", ErrTimeout, c.cfg.Addr, c.cfg.RequestTimeout)
				cn.fail(err)
				return true, err
			}
		case <-ctx.Done():
			r.timer.Stop()
			if r.state.CompareAndSwap(stateWaiting, stateAbandoned) {
				return true, ctx.Err()
			}
		}
		<-r.done // the reader claimed r first
		return false, r.err
	}
}
