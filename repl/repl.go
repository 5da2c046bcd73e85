// Package repl pushes the results of local writes to a key's replicas.
//
// It has one job: deliver, asynchronously and in order per peer, the item a
// write left in this node's store (or its absence) to the peers the caller
// names. It does not know rings or routing decisions: the caller (the
// cluster router) tells it the key, the targets and the item.
//
// Each peer has a bounded queue and one sender goroutine that takes what is
// queued in batches and sends them as pipelined peer.Client calls. Push
// never blocks: when a peer's queue is full the entry is dropped and
// counted. What travels is the result, not the operation: a value with its
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
	"context"
	"errors"
	"fmt"
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
	// BatchLen bounds the entries a sender takes at once. Zero means 256.
	BatchLen int
	// Peer is the template for each peer's client; Addr comes from the
	// target.
	Peer peer.Config
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
	// senders, concurrently; it must not block and must not retain key.
	Missed func(peer string, key []byte, it Item)
}

// Validate reports a config the replicator cannot use.
func (c Config) Validate() error {
	if c.QueueLen < 0 || c.BatchLen < 0 || c.RetryAfter < 0 {
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
	Dropped  uint64 // entries dropped because the queue was full
	Failures uint64 // entries discarded: refused by the peer, or unanswered maxTries times
	Retries  uint64 // sends the peer did not answer, queued again
	Stale    uint64 // sends the peer refused as older than its view, to be refreshed and sent again
	// Lag is the age of the oldest entry not yet acknowledged; 0 when
	// nothing is pending.
	Lag time.Duration
	// LagSeq is the number of writes not yet acknowledged (queued or in
	// flight): the sum over shards of the sequence numbers the peer is
	// behind.
	LagSeq int
}

type entry struct {
	key   []byte
	it    Item
	at    int64 // enqueue time, unix nanoseconds
	tries int   // sends the peer did not answer or refused as stale
	stale bool  // refused as stale: ask Config.Refresh before sending again
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

	mu       sync.Mutex
	q        []entry // ring buffer of cap QueueLen
	head, n  int
	inflight int64 // enqueue time of the oldest entry being sent; 0: none
	sending  int   // entries being sent
	wake     chan struct{}

	sent, dropped, failures, retries, stale atomic.Uint64
	started                                 bool
}

// Replicator pushes write results to peers. Its methods are safe for
// concurrent use.
type Replicator struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	links   map[string]*link
	ctx     context.Context // set by Run; nil before
	cancel  context.CancelFunc
	closed  bool
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
	return &Replicator{cfg: cfg, log: cfg.Logger, links: map[string]*link{}, done: make(chan struct{})}, nil
}

// Push queues the item for every target. It never blocks: an entry that
// does not fit a target's queue is dropped and counted. key and it.Value
// are copied.
func (r *Replicator) Push(key []byte, targets []Target, it Item) {
	if len(targets) == 0 {
		return
	}
	now := time.Now().UnixNano()
	buf := make([]byte, len(key)+len(it.Value))
	copy(buf, key)
	copy(buf[len(key):], it.Value)
	e := entry{key: buf[:len(key):len(key)], it: it, at: now}
	e.it.Value = buf[len(key):]
	for _, t := range targets {
		l := r.link(t)
		if l == nil {
			continue
		}
		l.mu.Lock()
		if l.n == len(l.q) {
			l.mu.Unlock()
			l.dropped.Add(1)
			r.missed(l, &e)
			continue
		}
		l.q[(l.head+l.n)%len(l.q)] = e
		l.n++
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// link returns the link to t, creating it (and, once running, its sender)
// on first use or when the peer's address changed.
func (r *Replicator) link(t Target) *link {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	l := r.links[t.Name]
	if l != nil && l.addr == t.Addr {
		return l
	}
	pc := r.cfg.Peer
	pc.Addr = t.Addr
	c, err := peer.New(pc)
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
		for i := 0; i < l.n && i < len(nl.q); i++ {
			nl.q[i] = l.q[(l.head+i)%len(l.q)]
		}
		nl.n = min(l.n, len(nl.q))
		l.n = 0
		l.mu.Unlock()
		l.client.Close()
	}
	r.links[t.Name] = nl
	if r.ctx != nil {
		r.start(nl)
	}
	return nl
}

// start runs l's sender; r.mu is held.
func (r *Replicator) start(l *link) {
	if l.started || r.stop || r.closed {
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
	if r.closed || r.ctx != nil {
		r.mu.Unlock()
		return errors.New("repl: Run called twice or after Close")
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	for _, l := range r.links {
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

// linkList is a snapshot of the links, taken under r.mu.
func (r *Replicator) linkList() []*link {
	r.mu.Lock()
	defer r.mu.Unlock()
	links := make([]*link, 0, len(r.links))
	for _, l := range r.links {
		links = append(links, l)
	}
	return links
}

// idle reports whether no link has an entry queued or being sent.
func (r *Replicator) idle() bool {
	for _, l := range r.linkList() {
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
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.stop = true
	close(r.done)
	if r.cancel != nil {
		r.cancel()
	}
	links := r.links
	r.mu.Unlock()
	r.senders.Wait()
	for _, l := range links {
		l.client.Close()
	}
	return nil
}

// Reset breaks the connections to peer (peer.Client.Reset): it answers
// again after a cut, and a connection from before may stay silent for
// seconds. What was in flight is sent again.
func (r *Replicator) Reset(peer string) {
	r.mu.Lock()
	l := r.links[peer]
	r.mu.Unlock()
	if l != nil {
		l.client.Reset()
	}
}

// Discard empties every peer's queue, counting the entries as dropped: the
// caller found that they predate a pause of this process, during which
// the peers may have taken newer writes for the same keys.
func (r *Replicator) Discard() {
	links := r.linkList()
	for _, l := range links {
		l.mu.Lock()
		n := l.n
		clear(l.q)
		l.head, l.n = 0, 0
		l.mu.Unlock()
		l.dropped.Add(uint64(n))
	}
}

// current reports whether l is still the link to its peer.
func (r *Replicator) current(l *link) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.links[l.name] == l
}

// send is l's sender: it takes batches off the queue and sends them.
func (r *Replicator) send(ctx context.Context, l *link) {
	batch := make([]entry, 0, r.cfg.BatchLen)
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
			batch = l.take(batch[:0], r.cfg.BatchLen)
			if len(batch) == 0 {
				break
			}
			ok := r.sendBatch(ctx, l, batch)
			l.mu.Lock()
			l.inflight, l.sending = 0, 0
			l.mu.Unlock()
			clear(batch)
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
// everything queued since (which is newer); it returns how many fit.
func (l *link) requeue(es []entry) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	kept := 0
	for i := len(es) - 1; i >= 0 && l.n < len(l.q); i-- {
		l.head = (l.head - 1 + len(l.q)) % len(l.q)
		l.q[l.head] = es[i]
		l.n++
		kept++
	}
	return kept
}

// take moves up to max entries from the queue into batch.
func (l *link) take(batch []entry, max int) []entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.n > 0 && len(batch) < max {
		batch = append(batch, l.q[l.head])
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

// sendBatch sends a batch as concurrent (pipelined) requests. Only the
// last entry for a key is sent: each entry is a result, so a later one
// supersedes an earlier one, and sending one per key keeps them in order.
// It reports false when an entry went back to the queue: the peer did not
// answer it, or refused it as stale.
func (r *Replicator) sendBatch(ctx context.Context, l *link, batch []entry) bool {
	last := make(map[string]int, len(batch))
	for i, e := range batch {
		last[string(e.key)] = i
	}
	var wg sync.WaitGroup
	var down atomic.Bool
	var mu sync.Mutex
	var again []entry // unanswered or stale, in batch order
	failed := make([]bool, len(batch))
	stale := make([]bool, len(batch))
	for i := range batch {
		e := &batch[i]
		if last[string(e.key)] != i {
			l.sent.Add(1) // superseded by a later entry of the batch
			continue
		}
		if e.stale {
			it, ok := r.cfg.Refresh(e.key, l.name)
			if !ok {
				continue // no longer this node's to push: the owners warm it
			}
			e.it = it
		}
		wg.Go(func() {
			var err error
			if e.it.Deleted {
				_, err = l.client.Delete(ctx, e.key, peer.DeleteOptions{NewCAS: e.it.CAS, Epoch: e.it.Epoch, Seq: e.it.Seq})
			} else {
				_, _, err = l.client.Set(ctx, e.key, e.it.Value, peer.SetOptions{
					Flags: e.it.Flags, TTL: protocol.MetaTTL(e.it.Exptime), NewCAS: e.it.CAS, Epoch: e.it.Epoch, Seq: e.it.Seq,
					KeyBinary: e.it.KeyBinary,
				})
			}
			if err != nil {
				if errors.Is(err, peer.ErrStaleEpoch) && r.cfg.Refresh != nil {
					l.stale.Add(1)
					mu.Lock()
					stale[i] = true
					mu.Unlock()
					return
				}
				if errors.Is(err, peer.ErrReply) {
					l.failures.Add(1) // the peer's answer: sending again changes nothing
					return
				}
				down.Store(true)
				mu.Lock()
				failed[i] = true
				mu.Unlock()
				return
			}
			l.sent.Add(1)
		})
	}
	wg.Wait()
	for i, e := range batch {
		if !failed[i] && !stale[i] {
			continue
		}
		if e.tries+1 >= maxTries {
			l.failures.Add(1)
			r.missed(l, &e)
			continue
		}
		e.tries++
		e.stale = stale[i]
		again = append(again, e)
		if failed[i] {
			l.retries.Add(1)
		}
	}
	if n := l.requeue(again); n < len(again) {
		l.dropped.Add(uint64(len(again) - n))
		for i := range len(again) - n { // requeue keeps the tail
			r.missed(l, &again[i])
		}
	}
	if down.Load() {
		r.log.Debug("replication peer did not answer", "peer", l.name)
	}
	return !down.Load() && len(again) == 0
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
		s := PeerStats{Peer: l.name, Queued: l.n, LagSeq: l.n + l.sending}
		l.mu.Unlock()
		if oldest != 0 {
			s.Lag = time.Duration(now - oldest)
		}
		s.Sent, s.Dropped, s.Failures, s.Retries, s.Stale = l.sent.Load(), l.dropped.Load(), l.failures.Load(), l.retries.Load(), l.stale.Load()
		out = append(out, s)
	}
	return out
}
