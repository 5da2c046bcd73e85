package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/ring"
)

var (
	// ErrConfig reports an unusable Config.
	ErrConfig = errors.New("client: bad config")
	// ErrNoRing reports that no node answered with a ring.
	ErrNoRing = errors.New("client: no node served a ring")
	// ErrProtocol reports a "stats ring" reply that does not parse.
	ErrProtocol = errors.New("client: bad ring reply")
)

// Defaults for the zero values of Config.
const (
	DefaultPoll    = time.Second
	DefaultTimeout = time.Second
	DefaultRetry   = time.Second
)

// Config sets up a Selector.
type Config struct {
	// Seeds are client addresses (host:port) of any nodes of the cluster;
	// at least one. They serve the first ring, and every request until
	// then.
	Seeds []string
	// Poll is how often Run asks for the ring. 0 means DefaultPoll.
	Poll time.Duration
	// Timeout bounds one "stats ring" exchange, and is the Timeout of the
	// Client. 0 means DefaultTimeout.
	Timeout time.Duration
	// Retry is how long a node that failed is avoided. 0 means
	// DefaultRetry.
	Retry time.Duration
	// Logger logs ring changes and failing nodes; nil discards.
	Logger *slog.Logger
}

// Validate reports whether c is usable, wrapping ErrConfig.
func (c Config) Validate() error {
	switch {
	case len(c.Seeds) == 0:
		return fmt.Errorf("%w: no seed address", ErrConfig)
	case c.Poll < 0 || c.Timeout < 0 || c.Retry < 0:
		return fmt.Errorf("%w: negative duration", ErrConfig)
	}
	return nil
}

// Member is one member of the ring as a node serves it.
type Member struct {
	Name string
	Addr string // client address
}

// Info is a node's "stats ring" reply.
type Info struct {
	Epoch                    int64
	Shards, VNodes, Replicas int
	Members                  []Member // in the node's order (by name)
}

// Selector is a memcache.ServerSelector that picks, for each key, the
// node serving it. It is safe for concurrent use; PickServer allocates
// nothing while no node is down.
type Selector struct {
	cfg   Config
	log   *slog.Logger
	seeds []net.Addr
	cur   atomic.Pointer[table]
	kick  chan struct{} // a failure asks Run for the ring now
	downs atomic.Int32  // len(down): PickServer's fast path reads this alone

	// mu guards down and next.
	mu   sync.Mutex
	down map[string]time.Time // address → avoided until
	next int                  // where Refresh starts asking, round robin
}

// table is one ring with the addresses of its members.
type table struct {
	info   Info
	ring   *ring.Ring
	owners [][]net.Addr // per shard, in ring order
	all    []net.Addr   // every member, by name
}

// New returns a Selector for the cluster cfg.Seeds belong to. It does no
// I/O: until Refresh succeeds, requests go to the seeds, which forward.
func New(cfg Config) (*Selector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Selector{cfg: cfg, log: log, kick: make(chan struct{}, 1), down: make(map[string]time.Time)}
	for _, a := range cfg.Seeds {
		addr, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return nil, fmt.Errorf("%w: seed %q: %v", ErrConfig, a, err)
		}
		s.seeds = append(s.seeds, addr)
	}
	return s, nil
}

// Client returns a gomemcache client that picks nodes with s and reports
// failed connections to it.
func (s *Selector) Client() *memcache.Client {
	c := memcache.NewFromSelector(s)
	c.Timeout = s.cfg.Timeout
	c.DialContext = s.dial
	return c
}

// Epoch returns the epoch of the ring in use; 0 before the first.
func (s *Selector) Epoch() int64 {
	if t := s.cur.Load(); t != nil {
		return t.info.Epoch
	}
	return 0
}

// Info returns the ring in use as the node served it.
func (s *Selector) Info() Info {
	if t := s.cur.Load(); t != nil {
		return t.info
	}
	return Info{}
}

// Owners returns the names of the owners of key, primary first; nil
// before the first ring.
func (s *Selector) Owners(key string) []string {
	t := s.cur.Load()
	if t == nil {
		return nil
	}
	return t.ring.Owners(t.ring.Shard([]byte(key)))
}

// PickServer returns the first owner of key not marked down; when all
// are, any node not marked down (it forwards); before the first ring, a
// seed.
func (s *Selector) PickServer(key string) (net.Addr, error) {
	t := s.cur.Load()
	if t == nil || len(t.all) == 0 {
		return s.fallback(s.seeds), nil
	}
	// The key's bytes, without a copy: Shard only reads them.
	owners := t.owners[t.ring.Shard(unsafe.Slice(unsafe.StringData(key), len(key)))]
	if s.downs.Load() == 0 && len(owners) > 0 {
		return owners[0], nil
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range owners {
		if !s.isDown(a, now) {
			return a, nil
		}
	}
	for _, a := range t.all {
		if !s.isDown(a, now) {
			return a, nil
		}
	}
	if len(owners) > 0 {
		return owners[0], nil
	}
	return t.all[0], nil
}

// fallback is the first of addrs not marked down, or the first.
func (s *Selector) fallback(addrs []net.Addr) net.Addr {
	if s.downs.Load() != 0 {
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, a := range addrs {
			if !s.isDown(a, now) {
				return a
			}
		}
	}
	return addrs[0]
}

// isDown reports whether a is avoided at now, forgetting expired marks.
// s.mu is held.
func (s *Selector) isDown(a net.Addr, now time.Time) bool {
	until, ok := s.down[a.String()]
	if !ok {
		return false
	}
	if now.Before(until) {
		return true
	}
	delete(s.down, a.String())
	s.downs.Store(int32(len(s.down)))
	return false
}

// Each calls f on every member of the ring (or every seed before the
// first ring), as gomemcache's FlushAll and Ping do.
func (s *Selector) Each(f func(net.Addr) error) error {
	addrs := s.seeds
	if t := s.cur.Load(); t != nil && len(t.all) > 0 {
		addrs = t.all
	}
	for _, a := range addrs {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}

// markDown avoids addr for cfg.Retry and asks Run for the ring now.
func (s *Selector) markDown(addr string, err error) {
	s.mu.Lock()
	_, was := s.down[addr]
	s.down[addr] = time.Now().Add(s.cfg.Retry)
	s.downs.Store(int32(len(s.down)))
	s.mu.Unlock()
	if !was {
		s.log.Warn("node failed, using the next owner", "addr", addr, "err", err)
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dial is the Client's DialContext: its connections report errors to s.
func (s *Selector) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		s.markDown(addr, err)
		return nil, err
	}
	return &conn{Conn: c, s: s, addr: addr}, nil
}

// conn marks its node down on a read or write error.
type conn struct {
	net.Conn
	s    *Selector
	addr string
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.s.markDown(c.addr, err)
	}
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil {
		c.s.markDown(c.addr, err)
	}
	return n, err
}

// Run keeps the ring current until ctx ends: it asks for it every
// cfg.Poll, and at once after a connection error. It returns ctx.Err().
func (s *Selector) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-s.kick:
		}
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot refresh the ring", "err", err)
		}
	}
}

// Refresh asks one node for the ring (members of the ring in use first,
// round robin, skipping those marked down; then the seeds) and swaps it
// in if its epoch or members differ from the ring in use.
func (s *Selector) Refresh(ctx context.Context) error {
	var cands []net.Addr
	now := time.Now()
	s.mu.Lock()
	start := s.next
	s.next++
	if t := s.cur.Load(); t != nil {
		for i := range t.all {
			a := t.all[(start+i)%len(t.all)]
			if !s.isDown(a, now) {
				cands = append(cands, a)
			}
		}
	}
	s.mu.Unlock()
	cands = append(cands, s.seeds...)
	var errs []error
	for _, a := range cands {
		info, err := s.fetch(ctx, a.String())
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return s.apply(info, a.String())
	}
	return fmt.Errorf("%w: %w", ErrNoRing, errors.Join(errs...))
}

// fetch asks addr for "stats ring".
func (s *Selector) fetch(ctx context.Context, addr string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Info{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("stats ring\r\n")); err != nil {
		return Info{}, err
	}
	info, err := Parse(bufio.NewReader(c))
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", addr, err)
	}
	if info.Epoch == 0 {
		return Info{}, fmt.Errorf("%w: %s has no ring yet", ErrNoRing, addr)
	}
	return info, nil
}

// Parse reads one "stats ring" reply, through END.
func Parse(r *bufio.Reader) (Info, error) {
	var info Info
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return Info{}, err
		}
		line = strings.TrimSuffix(line, "\r\n")
		if line == "END" {
			break
		}
		f := strings.Split(line, " ")
		if len(f) != 3 || f[0] != "STAT" {
			return Info{}, fmt.Errorf("%w: %q", ErrProtocol, line)
		}
		if name, ok := strings.CutPrefix(f[1], "ring_member:"); ok {
			info.Members = append(info.Members, Member{Name: name, Addr: f[2]})
			continue
		}
		var dst *int
		switch f[1] {
		case "ring_epoch":
			if info.Epoch, err = strconv.ParseInt(f[2], 10, 64); err != nil {
				return Info{}, fmt.Errorf("%w: %q", ErrProtocol, line)
			}
			continue
		case "ring_shards":
			dst = &info.Shards
		case "ring_vnodes":
			dst = &info.VNodes
		case "ring_replicas":
			dst = &info.Replicas
		default:
			continue // ring_members, ring_unseen, and whatever comes later
		}
		if *dst, err = strconv.Atoi(f[2]); err != nil {
			return Info{}, fmt.Errorf("%w: %q", ErrProtocol, line)
		}
	}
	return info, nil
}

// apply swaps in info unless it is the membership in use or older: an
// earlier epoch, or the same epoch with fewer members (within an epoch a
// node only adds members, as gossip first sees them). Nodes disagree
// while a change spreads; Refresh asks them in turn, and this keeps the
// client from flapping back. from is the node that served it: a member
// advertising an unspecified host (0.0.0.0) is reached at from's host.
func (s *Selector) apply(info Info, from string) error {
	if t := s.cur.Load(); t != nil {
		switch {
		case info.Epoch < t.info.Epoch,
			info.Epoch == t.info.Epoch && len(info.Members) < len(t.info.Members),
			info.Epoch == t.info.Epoch && slices.Equal(t.info.Members, info.Members):
			return nil
		}
	}
	names := make([]string, len(info.Members))
	byName := make(map[string]net.Addr, len(info.Members))
	t := &table{info: info}
	fromHost, _, _ := net.SplitHostPort(from)
	for i, m := range info.Members {
		names[i] = m.Name
		host, port, err := net.SplitHostPort(m.Addr)
		if err != nil {
			return fmt.Errorf("%w: member %s address %q", ErrProtocol, m.Name, m.Addr)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = fromHost
		}
		a, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return fmt.Errorf("%w: member %s: %v", ErrProtocol, m.Name, err)
		}
		byName[m.Name] = a
		t.all = append(t.all, a)
	}
	r, err := ring.New(ring.Config{Shards: info.Shards, VNodes: info.VNodes, Replicas: info.Replicas}, names, info.Epoch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	t.ring = r
	t.owners = make([][]net.Addr, r.NumShards())
	for sh := range t.owners {
		os := r.Owners(sh)
		t.owners[sh] = make([]net.Addr, len(os))
		for i, o := range os {
			t.owners[sh][i] = byName[o]
		}
	}
	s.cur.Store(t)
	s.log.Info("ring", "epoch", info.Epoch, "members", len(names), "from", from)
	return nil
}
