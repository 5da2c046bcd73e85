// Package repl pushes the results of local writes to a key's replicas.
//
// It has one job: deliver, asynchronously and in order per peer, the item a
// write left in this node's store (or its absence) to the peers the caller
// names. It does not know rings or routing decisions: the caller (the
// cluster router) tells it the key, the targets and the item.
//
// Each peer has a bounded queue (Config.QueueLen entries and
// Config.QueueBytes bytes, what is being sent included) and one sender
// goroutine that takes what is queued in batches and sends them as
// pipelined asynchronous peer.Client calls (SetAsync, DeleteAsync: one
// Flush per batch, no goroutine per entry), waiting for the batch's
// replies before the next. Push never blocks: when a peer's queue is full
// the new entry is dropped, counted and told to Config.Missed. Push copies
// the key and value once, into a pooled buffer shared by the entries for
// every target and reused when the last of them is done with; it
// finds each peer's queue without a replicator-wide lock (the links are an
// immutable map swapped on change). A batch sends one entry per key: the
// one with the newest CAS (the last queued when either has none). What travels is the result, not the operation: a value with its
// client flags, absolute expiry and CAS (ms F T E, E being shoal's peer
// extension for an explicit new CAS), or a delete (md). A replica thus
// holds the primary's CAS, and a client's gets token still works after the
// primary fails.
//
// Each entry carries the sender's ring epoch and the shard's sequence number
// (ms/md Y and Z, peer-only flags): the replica refuses an epoch older than
// the last change of the shard's owners, so a node that lost a shard cannot
// overwrite its new owners. A refused entry is not simply dropped: its
// sender may only be behind the replica's view (a view change that kept
// the replica an owner, or made it one after it had pulled the key), so
// RetryAfter later the caller is asked for the key's
// state in its current view (Config.Refresh) and that is sent instead, up
// to three times. An entry the peer does not answer goes back to
// the head of the queue and is sent again after RetryAfter, up to three
// times, then counted, told to Config.Missed and discarded: the caller
// owes the peer that write (cluster's hints hand it back once the peer
// answers again).
package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"shoal/peer"
	"shoal/protocol"
)

// ErrConfig reports a Config the replicator cannot use.
var ErrConfig = errors.New("repl: bad config")

// Config tunes a Replicator. The zero value of each field means its default.
type Config struct {
	// QueueLen bounds each peer's queue. Zero means 65536.
	QueueLen int
	// QueueBytes bounds the bytes held for each peer: the keys and values
	// of the entries queued and being sent, plus EntryOverhead each, so
	// that a slow or stalled replica holds a bounded amount of memory. A
	// push that would exceed it is dropped as one that finds the queue
	// full. Zero means 64 MiB.
	QueueBytes int64
	// BatchLen bounds the entries a sender takes at once. Zero means 256.
	BatchLen int
	// Peer is the template for each peer's client; Addr comes from the
	// target.
	Peer peer.Config
	// Pool, if set, lends the client to each peer, shared with the node's
	// other users of that peer (the router's forwarding); nil means a
	// pool of the replicator's own, made with Peer.
	Pool *peer.Pool
	// RetryAfter is how long a sender pauses after a batch in which the
	// peer did not answer. Zero means 200 ms.
	RetryAfter time.Duration
	// Logger receives peer failures; nil discards.
	Logger *slog.Logger
	// Refresh, when not nil, is asked again for an entry the peer refused
	// as older than its view (peer.ErrStaleEpoch), RetryAfter later: it
	// returns what to send peer for key now (the local item or its
	// absence, with the current epoch and a new sequence number), or false
	// when this node no longer pushes key to peer. Without it a refused
	// entry is counted as a failure. It is called from the senders,
	// concurrently, must not block on the network and must not retain key;
	// the returned Value is the replicator's.
	Refresh func(key []byte, peer string) (Item, bool)
	// Missed, when not nil, is told of every entry given up on without the
	// peer's answer: dropped from a full queue, or unanswered (or refused
	// as stale) maxTries times. Not of what Discard empties. The caller
	// owes peer those writes (cluster's hints). Called from Push and the
	// senders, concurrently; it must not block and must not retain key
	// or it.Value.
	Missed func(peer string, key []byte, it Item)
}

// EntryOverhead is what a queued entry costs besides its key and value,
// in bytes: the unit Config.QueueBytes counts in.
const EntryOverhead = 128

// Validate reports a config the replicator cannot use.
func (c Config) Validate() error {
	if c.QueueLen < 0 || c.QueueBytes < 0 || c.BatchLen < 0 || c.RetryAfter < 0 {
		return fmt.Errorf("%w: negative size or duration", ErrConfig)
	}
	return nil
}

// Target is one peer to push to: its member name and peer address.
type Target struct {
	Name, Addr string
}

// Item is the result of a write: the value with its client flags,
// absolute exptime (unix seconds; 0 never, 1 already expired) and CAS, or
// Deleted when the key is gone. A non-zero CAS is sent as ms E so the
// replica stores the item with the same CAS; zero lets the replica pick.
type Item struct {
	Value   []byte
	Flags   uint32
	Exptime int64
	CAS     uint64
	Deleted bool
	// Epoch is the sender's ring epoch and Seq the write's number in its
	// shard at the sender (both travel as peer-only meta flags).
	Epoch, Seq uint64
	// KeyBinary: the key's client sent it base64-encoded (it travels so).
	KeyBinary bool
}

// PeerStats is a snapshot of one peer's counters.
type PeerStats struct {
	Peer     string
	Queued   int    // entries waiting now
	Sent     uint64 // entries the peer acknowledged
	Dropped  uint64 // entries dropped because the queue was full (QueueLen or QueueBytes)
	Failures uint64 // entries discarded: refused by the peer, or unanswered maxTries times
	Retries  uint64 // sends the peer did not answer, queued again
	Stale    uint64 // sends the peer refused as older than its view, to be refreshed and sent again
	// Bytes is what the entries queued and being sent hold now, as
	// Config.QueueBytes counts it.
	Bytes int64
	// Lag is the age of the oldest entry not yet acknowledged; 0 when
	// nothing is pending.
	Lag time.Duration
	// LagSeq is the number of writes not yet acknowledged (queued or in
	// flight): the sum over shards of the sequence numbers the peer is
	// behind.
	LagSeq int
}

// buf is one push's copy of its key and value, shared by the entries
// queued for each of its targets and given back (putBuf) when the last of
// them is done with it.
type buf struct {
	b    []byte
	refs atomic.Int32
}

// Buffers are reused: those of up to maxSmall bytes through a free list
// of at most freeLen (a channel: unlike a sync.Pool it survives garbage
// collections and GOMAXPROCS changes, so a steady stream of pushes
// allocates nothing once it holds as many buffers as are in flight; it
// keeps at most freeLen*maxSmall bytes), larger ones up to maxPooled
// through a sync.Pool; larger still go to the garbage collector.
const (
	maxSmall  = 16 << 10
	freeLen   = 1024
	maxPooled = 1 << 20
)

var (
	freeBufs = make(chan *buf, freeLen)
	bigBufs  sync.Pool // *buf
)

// getBuf returns a buffer of n bytes.
func getBuf(n int) *buf {
	var b *buf
	if n <= maxSmall {
		select {
		case b = <-freeBufs:
		default:
		}
	} else if v := bigBufs.Get(); v != nil {
		b = v.(*buf)
	}
	if b == nil {
		b = new(buf)
	}
	if cap(b.b) < n {
		b.b = make([]byte, n, max(n, 256, min(2*cap(b.b), maxSmall)))
	}
	b.b = b.b[:n]
	return b
}

func (b *buf) release() {
	if b.refs.Add(-1) != 0 {
		return
	}
	switch c := cap(b.b); {
	case c <= maxSmall:
		select {
		case freeBufs <- b:
		default:
		}
	case c <= maxPooled:
		bigBufs.Put(b)
	}
}

type entry struct {
	key   []byte
	it    Item
	buf   *buf  // holds key and, unless refreshed since, it.Value
	size  int64 // what it counts against QueueBytes
	at    int64 // enqueue time, unix nanoseconds
	tries int   // sends the peer did not answer or refused as stale
	stale bool  // refused as stale: ask Config.Refresh before sending again
}

// done gives up e's share of its buffer.
func (e *entry) done() {
	if e.buf != nil {
		e.buf.release()
		e.buf = nil
	}
}

// maxTries is how many times an entry is sent to a peer that does not
// answer (or refuses it as stale) before it is discarded: a blip costs
// nothing, a peer that is gone re-pulls its shards when it returns
// (cluster's warm-up).
const maxTries = 3

// link is one peer: its queue, client and counters.
type link struct {
	name, addr string
	client     *peer.Client

	mu           sync.Mutex
	q            []entry // ring buffer of cap QueueLen
	head, n      int
	bytes        int64 // held by the queued entries
	sendingBytes int64 // held by the entries being sent
	inflight     int64 // enqueue time of the oldest entry being sent; 0: none
	sending      int   // entries being sent
	wake         chan struct{}

	sent, dropped, failures, retries, stale atomic.Uint64
	started                                 bool
}

// Replicator pushes write results to peers. Its methods are safe for
// concurrent use.
type Replicator struct {
	cfg Config
	log *slog.Logger

	// links is every peer's link by name: an immutable map, replaced
	// (under mu) when a link is added or moves, read without a lock.
	links  atomic.Pointer[map[string]*link]
	closed atomic.Bool

	mu      sync.Mutex
	ctx     context.Context // set by Run; nil before
	cancel  context.CancelFunc
	stop    bool // Run is stopping: start no sender
	senders sync.WaitGroup
	done    chan struct{} // closed by Close
}

// New returns a replicator; it does no I/O and starts nothing (Run does).
func New(cfg Config) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 65536
	}
	if cfg.QueueBytes == 0 {
		cfg.QueueBytes = 64 << 20
	}
	if cfg.BatchLen == 0 {
		cfg.BatchLen = 256
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Peer.Logger == nil {
		cfg.Peer.Logger = cfg.Logger
	}
	if cfg.Pool == nil {
		cfg.Pool = peer.NewPool(cfg.Peer)
	}
	r := &Replicator{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	r.links.Store(&map[string]*link{})
	return r, nil
}

// Push queues the item for every target. It never blocks: an entry that
// does not fit a target's queue is dropped and counted. key and it.Value
// are copied (once, whatever the number of targets); neither targets
// nor they are retained.
func (r *Replicator) Push(key []byte, targets []Target, it Item) {
	if len(targets) == 0 {
		return
	}
	n := len(key) + len(it.Value)
	b := getBuf(n)
	copy(b.b, key)
	copy(b.b[len(key):], it.Value)
	b.refs.Store(int32(len(targets)))
	e := entry{key: b.b[:len(key):len(key)], it: it, buf: b, size: int64(n) + EntryOverhead, at: time.Now().UnixNano()}
	e.it.Value = b.b[len(key):n:n]
	for _, t := range targets {
		l := r.link(t)
		if l == nil {
			b.release()
			continue
		}
		if !l.enqueue(e, r.cfg.QueueBytes) {
			l.dropped.Add(1)
			r.missed(l, &e)
			b.release()
			continue
		}
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// enqueue queues e at the tail unless the queue is full (entries or
// bytes); it reports whether it did.
func (l *link) enqueue(e entry, maxBytes int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == len(l.q) || l.bytes+l.sendingBytes+e.size > maxBytes {
		return false
	}
	l.q[(l.head+l.n)%len(l.q)] = e
	l.n++
	l.bytes += e.size
	return true
}

// link returns the link to t, creating it (and, once running, its sender)
// on first use or when the peer's address changed; nil once closed.
func (r *Replicator) link(t Target) *link {
	if l := (*r.links.Load())[t.Name]; l != nil && l.addr == t.Addr && !r.closed.Load() {
		return l
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return nil
	}
	links := *r.links.Load()
	l := links[t.Name]
	if l != nil && l.addr == t.Addr {
		return l
	}
	c, err := r.cfg.Pool.Get(t.Addr)
	if err != nil {
		r.log.Error("cannot create replication client", "peer", t.Name, "addr", t.Addr, "err", err)
		return nil
	}
	nl := &link{name: t.Name, addr: t.Addr, client: c, q: make([]entry, r.cfg.QueueLen), wake: make(chan struct{}, 1)}
	if l != nil {
		// The peer moved: its pending entries follow it, the old sender
		// stops when it sees the link replaced.
		nl.sent.Store(l.sent.Load())
		nl.dropped.Store(l.dropped.Load())
		nl.failures.Store(l.failures.Load())
		nl.retries.Store(l.retries.Load())
		nl.stale.Store(l.stale.Load())
		l.mu.Lock()
		for i := 0; i < l.n; i++ {
			e := &l.q[(l.head+i)%len(l.q)]
			if i < len(nl.q) {
				nl.q[i] = *e
				nl.bytes += e.size
			} else {
				e.done()
			}
			*e = entry{}
		}
		nl.n = min(l.n, len(nl.q))
		l.n, l.bytes = 0, 0
		l.mu.Unlock()
		r.cfg.Pool.Put(l.addr)
	}
	next := make(map[string]*link, len(links)+1)
	for name, o := range links {
		next[name] = o
	}
	next[t.Name] = nl
	r.links.Store(&next)
	if r.ctx != nil {
		r.start(nl)
	}
	return nl
}

// start runs l's sender; r.mu is held.
func (r *Replicator) start(l *link) {
	if l.started || r.stop || r.closed.Load() {
		return
	}
	l.started = true
	ctx := r.ctx
	r.senders.Go(func() { r.send(ctx, l) })
}

// Run starts the senders and returns when ctx ends or Close is called,
// after every sender has stopped.
func (r *Replicator) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.closed.Load() || r.ctx != nil {
		r.mu.Unlock()
		return errors.New("repl: Run called twice or after Close")
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	for _, l := range *r.links.Load() {
		r.start(l)
	}
	rctx := r.ctx
	r.mu.Unlock()
	select {
	case <-rctx.Done():
	case <-r.done:
	}
	r.mu.Lock()
	r.stop = true
	r.mu.Unlock()
	r.cancel()
	r.senders.Wait()
	return nil
}

// Drain waits until every queued entry has been sent, refused for good or
// given up on (Config.Missed), or ctx ends; it reports whether all were.
// A node stopping calls it after its servers stopped taking writes and
// before Close: a write it acknowledged a moment before would otherwise
// stay on the node alone, and go with it (e2e/history, rolling restarts).
func (r *Replicator) Drain(ctx context.Context) bool {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !r.idle() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// linkList is a snapshot of the links.
func (r *Replicator) linkList() []*link {
	links := *r.links.Load()
	out := make([]*link, 0, len(links))
	for _, l := range links {
		out = append(out, l)
	}
	return out
}

// idle reports whether no link has an entry queued or being sent.
func (r *Replicator) idle() bool {
	for _, l := range *r.links.Load() {
		l.mu.Lock()
		busy := l.n > 0 || l.sending > 0
		l.mu.Unlock()
		if busy {
			return false
		}
	}
	return true
}

// Close stops the senders, discarding what is still queued, and closes
// every peer client. It is idempotent.
func (r *Replicator) Close() error {
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		return nil
	}
	r.closed.Store(true)
	r.stop = true
	close(r.done)
	if r.cancel != nil {
		r.cancel()
	}
	links := *r.links.Load()
	r.mu.Unlock()
	r.senders.Wait()
	for _, l := range links {
		r.cfg.Pool.Put(l.addr)
	}
	return nil
}

// Reset breaks the connections to peer (peer.Client.Reset): it answers
// again after a cut, and a connection from before may stay silent for
// seconds. What was in flight is sent again.
func (r *Replicator) Reset(peer string) {
	if l := (*r.links.Load())[peer]; l != nil {
		l.client.Reset()
	}
}

// Discard empties every peer's queue, counting the entries as dropped: the
// caller found that they predate a pause of this process, during which
// the peers may have taken newer writes for the same keys.
func (r *Replicator) Discard() {
	for _, l := range *r.links.Load() {
		l.mu.Lock()
		n := l.n
		for i := range n {
			l.q[(l.head+i)%len(l.q)].done()
		}
		clear(l.q)
		l.head, l.n, l.bytes = 0, 0, 0
		l.mu.Unlock()
		l.dropped.Add(uint64(n))
	}
}

// current reports whether l is still the link to its peer.
func (r *Replicator) current(l *link) bool {
	return (*r.links.Load())[l.name] == l
}

// sender is one link's sender state, reused batch after batch.
type sender struct {
	r     *Replicator
	l     *link
	batch []entry
	reqs  []req   // one per batch entry: its asynchronous request
	slots []int32 // open-addressing table of batch index + 1 by key, for keeping one entry per key
	seed  maphash.Seed
	again []entry
	// pending counts the batch's requests not yet answered, plus one
	// while they are being queued; the one that brings it to zero signals
	// wake.
	pending atomic.Int32
	wake    chan struct{}
}

// req is one entry's request: the peer client's handler for its reply.
type req struct {
	s    *sender
	keep bool // the entry this batch sends for its key
	sent bool // a request went out for it
	err  error
}

func (q *req) SetDone(_ peer.Result, _ uint64, err error) { q.err = err; q.s.done() }
func (q *req) DeleteDone(_ peer.Result, err error)        { q.err = err; q.s.done() }

func (s *sender) done() {
	if s.pending.Add(-1) == 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// send is l's sender: it takes batches off the queue and sends them.
func (r *Replicator) send(ctx context.Context, l *link) {
	n := r.cfg.BatchLen
	slots := 16
	for slots < 2*n {
		slots *= 2
	}
	s := &sender{r: r, l: l, batch: make([]entry, 0, n), reqs: make([]req, n), slots: make([]int32, slots),
		seed: maphash.MakeSeed(), wake: make(chan struct{}, 1)}
	for i := range s.reqs {
		s.reqs[i].s = s
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		for {
			if !r.current(l) {
				return
			}
			s.batch = l.take(s.batch[:0], n)
			if len(s.batch) == 0 {
				break
			}
			ok := s.sendBatch(ctx)
			l.mu.Lock()
			l.inflight, l.sending, l.sendingBytes = 0, 0, 0
			l.mu.Unlock()
			clear(s.batch)
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-time.After(r.cfg.RetryAfter):
				}
			}
		}
	}
}

// requeue puts es back at the head of the queue, in order, ahead of
// everything queued since (which is newer); it returns how many fit. Their
// bytes move from the batch being sent back to the queue.
func (l *link) requeue(es []entry) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := 0
	for i := len(es) - 1; i >= 0 && l.n < len(l.q); i-- {
		l.head = (l.head - 1 + len(l.q)) % len(l.q)
		l.q[l.head] = es[i]
		l.n++
		l.bytes += es[i].size
		l.sendingBytes -= es[i].size
		kept++
	}
	return kept
}

// take moves up to max entries from the queue into batch.
func (l *link) take(batch []entry, max int) []entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.n > 0 && len(batch) < max {
		e := l.q[l.head]
		batch = append(batch, e)
		l.bytes -= e.size
		l.sendingBytes += e.size
		l.q[l.head] = entry{}
		l.head = (l.head + 1) % len(l.q)
		l.n--
	}
	if len(batch) > 0 {
		l.inflight = batch[0].at
	}
	l.sending = len(batch)
	return batch
}

// newer reports whether entry a, queued after b for the same key,
// supersedes it: it has the newer CAS, or either has none (then the
// later queued wins).
func newer(a, b *entry) bool {
	return a.it.CAS == 0 || b.it.CAS == 0 || a.it.CAS >= b.it.CAS
}

// pick marks in s.reqs the entry of the batch to send for each key: each
// entry is a result, so the newest supersedes the others, and sending
// one per key keeps them in order.
func (s *sender) pick() {
	clear(s.slots)
	mask := len(s.slots) - 1
	for i := range s.batch {
		s.reqs[i].keep = false
		key := s.batch[i].key
		for p := int(maphash.Bytes(s.seed, key)) & mask; ; p = (p + 1) & mask {
			j := int(s.slots[p]) - 1
			if j < 0 {
				s.slots[p] = int32(i + 1)
				break
			}
			if bytes.Equal(s.batch[j].key, key) {
				if newer(&s.batch[i], &s.batch[j]) {
					s.slots[p] = int32(i + 1)
				}
				break
			}
		}
	}
	for _, v := range s.slots {
		if v > 0 {
			s.reqs[v-1].keep = true
		}
	}
}

// sendBatch sends s.batch as asynchronous (pipelined) requests, one per
// key (pick), flushed together, and waits for their replies. An entry
// whose request cannot be queued (no live connection) is sent
// synchronously, which dials; when that finds the peer not answering, the
// batch's other entries that cannot be queued fail with the same error
// rather than wait in turn. It reports false when an entry went back to
// the queue: the peer did not answer it, or refused it as stale.
func (s *sender) sendBatch(ctx context.Context) bool {
	r, l, batch := s.r, s.l, s.batch
	s.pick()
	s.pending.Store(1)
	var connErr error // the peer did not answer a synchronous send
	for i := range batch {
		e, q := &batch[i], &s.reqs[i]
		q.sent, q.err = false, nil
		if !q.keep {
			continue
		}
		if e.stale {
			it, ok := r.cfg.Refresh(e.key, l.name)
			if !ok {
				continue // no longer this node's to push: the owners warm it
			}
			e.it = it
		}
		q.sent = true
		s.pending.Add(1)
		var err error
		if e.it.Deleted {
			err = l.client.DeleteAsync(e.key, peer.DeleteOptions{NewCAS: e.it.CAS, Epoch: e.it.Epoch, Seq: e.it.Seq}, q)
		} else {
			err = l.client.SetAsync(e.key, e.it.Value, setOptions(&e.it), q)
		}
		if err != nil { // not queued, q will not be called
			s.pending.Add(-1)
			switch {
			case connErr != nil:
				q.err = connErr
			case e.it.Deleted:
				_, q.err = l.client.Delete(ctx, e.key, peer.DeleteOptions{NewCAS: e.it.CAS, Epoch: e.it.Epoch, Seq: e.it.Seq})
			default:
				_, _, q.err = l.client.Set(ctx, e.key, e.it.Value, setOptions(&e.it))
			}
			if unanswered(q.err) {
				connErr = q.err
			}
		}
	}
	l.client.Flush()
	s.done()
	select {
	case <-s.wake:
	case <-ctx.Done():
		return false // stopping: what is queued is discarded
	}
	down := false
	s.again = s.again[:0]
	for i := range batch {
		e, q := &batch[i], &s.reqs[i]
		if !q.sent {
			if !q.keep {
				l.sent.Add(1) // superseded by a newer entry of the batch
			}
			e.done()
			continue
		}
		err := q.err
		q.err = nil
		var stale bool
		switch {
		case err == nil:
			l.sent.Add(1)
			e.done()
			continue
		case errors.Is(err, peer.ErrStaleEpoch) && r.cfg.Refresh != nil:
			l.stale.Add(1)
			stale = true
		case errors.Is(err, peer.ErrReply):
			l.failures.Add(1) // the peer's answer: sending again changes nothing
			e.done()
			continue
		default:
			down = true
		}
		if e.tries+1 >= maxTries {
			l.failures.Add(1)
			r.missed(l, e)
			e.done()
			continue
		}
		e.tries++
		e.stale = stale
		s.again = append(s.again, *e)
		if !stale {
			l.retries.Add(1)
		}
	}
	if n := l.requeue(s.again); n < len(s.again) {
		l.dropped.Add(uint64(len(s.again) - n))
		for i := range len(s.again) - n { // requeue keeps the tail
			r.missed(l, &s.again[i])
			s.again[i].done()
		}
	}
	clear(s.again)
	if down {
		r.log.Debug("replication peer did not answer", "peer", l.name)
	}
	return !down && len(s.again) == 0
}

// unanswered reports whether err says the peer (or its connection) did
// not answer, rather than anything about the entry.
func unanswered(err error) bool {
	for _, e := range []error{peer.ErrDown, peer.ErrTimeout, peer.ErrUnreachable, peer.ErrConnLost, peer.ErrHandshake, peer.ErrClosed, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// setOptions are the peer set options that replicate it.
func setOptions(it *Item) peer.SetOptions {
	return peer.SetOptions{
		Flags: it.Flags, TTL: protocol.MetaTTL(it.Exptime), NewCAS: it.CAS, Epoch: it.Epoch, Seq: it.Seq,
		KeyBinary: it.KeyBinary,
	}
}

// missed tells Config.Missed that e will not reach l.
func (r *Replicator) missed(l *link, e *entry) {
	if r.cfg.Missed != nil {
		r.cfg.Missed(l.name, e.key, e.it)
	}
}

// Stats returns a snapshot of every peer's counters, by peer name.
func (r *Replicator) Stats() []PeerStats {
	links := r.linkList()
	sort.Slice(links, func(i, j int) bool { return links[i].name < links[j].name })
	now := time.Now().UnixNano()
	out := make([]PeerStats, 0, len(links))
	for _, l := range links {
		l.mu.Lock()
		oldest := l.inflight
		if oldest == 0 && l.n > 0 {
			oldest = l.q[l.head].at
		}
		s := PeerStats{Peer: l.name, Queued: l.n, LagSeq: l.n + l.sending, Bytes: l.bytes + l.sendingBytes}
		l.mu.Unlock()
		if oldest != 0 {
			s.Lag = time.Duration(now - oldest)
		}
		s.Sent, s.Dropped, s.Failures, s.Retries, s.Stale = l.sent.Load(), l.dropped.Load(), l.failures.Load(), l.retries.Load(), l.stale.Load()
		out = append(out, s)
	}
	return out
}
