package history

// The recorder: writers and readers through every node that is up, each
// operation appended to a Log with its start and end; and the checkpoint
// that reads every key through every node and from every owner's store.

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/netns"
	"shoal/ring"
)

// clientTimeout is each client's timeout: longer than the peer request
// timeout (1 s), so a timeout is the cluster's failover taking too long.
const clientTimeout = 3 * time.Second

// cluster is the current members and the etcd they share, and the
// network namespaces they run in, if any.
type cluster struct {
	etcd *etcd
	nn   *netns.Net // nil: every node on loopback

	mu    sync.Mutex // guards nodes and used
	nodes []*node
	used  map[int]bool // nn's hosts taken by a node
}

// takeHost returns a namespace no running node uses.
func (c *cluster) takeHost(t testing.TB) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.used == nil {
		c.used = make(map[int]bool)
	}
	for i := range c.nn.Hosts() {
		if !c.used[i] {
			c.used[i] = true
			return i
		}
	}
	t.Fatalf("all %d network namespaces in use", c.nn.Hosts())
	return -1
}

// freeHost gives back the namespace of a node that has exited.
func (c *cluster) freeHost(host int) {
	c.mu.Lock()
	delete(c.used, host)
	c.mu.Unlock()
}

func (c *cluster) members() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

func (c *cluster) setMembers(nodes []*node) {
	c.mu.Lock()
	c.nodes = nodes
	c.mu.Unlock()
}

// workload runs writers and readers until stop. Each writer owns the keys
// i ≡ w (mod writers) and writes them in turn with values 1, 2, 3, ... per
// key, so that a key's writes never overlap; readers get random keys. Each
// worker sends through the members that are up, in turn.
type workload struct {
	log  *Log
	cl   *cluster
	keys []string
	pace time.Duration // pause between one worker's operations

	// hold: each operation holds it for reading, a checkpoint for writing.
	hold sync.RWMutex
	stop chan struct{}
	wg   sync.WaitGroup
}

func newWorkload(log *Log, cl *cluster, nkeys int, pace time.Duration) *workload {
	w := &workload{log: log, cl: cl, pace: pace, stop: make(chan struct{})}
	for i := range nkeys {
		w.keys = append(w.keys, fmt.Sprintf("hk-%04d", i))
	}
	return w
}

// start runs the workers, each with its own clients and a rand seeded
// from seed.
func (w *workload) start(writers, readers int, seed int64) {
	for i := range writers + readers {
		wk := &worker{w: w, id: i, rng: rand.New(rand.NewSource(seed + int64(i))), clients: make(map[*node]*client)}
		w.wg.Add(1)
		if i < writers {
			go wk.write(writers)
		} else {
			go wk.read()
		}
	}
}

// halt stops the workers and waits for them.
func (w *workload) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

type worker struct {
	w       *workload
	id      int
	rng     *rand.Rand
	next    int
	clients map[*node]*client // by node, not address: a joining node may take a namespace (and address) a node that left used
}

// client is a worker's client to one node's process.
type client struct {
	mc          *memcache.Client
	incarnation int64
}

// node picks the next member that is up; nil when none is.
func (k *worker) node() *node {
	ms := k.w.cl.members()
	for range ms {
		n := ms[k.next%len(ms)]
		k.next++
		if n.up.Load() {
			return n
		}
	}
	return nil
}

// client is the worker's client to n's current process.
func (k *worker) client(n *node) *memcache.Client {
	c := k.clients[n]
	if inc := n.incarnation.Load(); c == nil || c.incarnation != inc {
		if c != nil {
			c.mc.Close()
		}
		mc := memcache.New(n.addr)
		mc.Timeout = clientTimeout
		c = &client{mc: mc, incarnation: inc}
		k.clients[n] = c
	}
	return c.mc
}

// paced waits between operations; false once the workload stops.
func (k *worker) paced() bool {
	select {
	case <-k.w.stop:
		return false
	case <-time.After(k.w.pace):
		return true
	}
}

func (k *worker) write(writers int) {
	defer k.w.wg.Done()
	values := make([]int64, len(k.w.keys))
	for i := k.id; k.paced(); i += writers {
		if i >= len(k.w.keys) {
			i = k.id
		}
		k.w.hold.RLock()
		n := k.node()
		if n == nil {
			k.w.hold.RUnlock()
			continue
		}
		values[i]++
		key, v := k.w.keys[i], values[i]
		op := Op{Kind: Write, Key: key, Value: v, Node: n.name, Client: k.id, Start: k.w.log.Now()}
		err := k.client(n).Set(&memcache.Item{Key: key, Value: strconv.AppendInt(nil, v, 10)})
		op.End = k.w.log.Now()
		op.Result, op.Err = outcome(err)
		k.w.log.Add(op)
		k.w.hold.RUnlock()
	}
}

func (k *worker) read() {
	defer k.w.wg.Done()
	for k.paced() {
		k.w.hold.RLock()
		n := k.node()
		if n == nil {
			k.w.hold.RUnlock()
			continue
		}
		key := k.w.keys[k.rng.Intn(len(k.w.keys))]
		k.w.log.Add(get(k.w.log, k.client(n), n, key, k.id))
		k.w.hold.RUnlock()
	}
}

// get reads key through n and records what it returned.
func get(log *Log, c *memcache.Client, n *node, key string, client int) Op {
	op := Op{Kind: Read, Key: key, Node: n.name, Client: client, Start: log.Now()}
	it, err := c.Get(key)
	op.End = log.Now()
	op.Result, op.Err = outcome(err)
	if err == nil {
		v, perr := strconv.ParseInt(string(it.Value), 10, 64)
		if perr != nil || v <= 0 {
			op.Result, op.Err = Failed, fmt.Sprintf("value %q is not a written value", it.Value)
		}
		op.Value = v
	}
	return op
}

func outcome(err error) (Result, string) {
	var ne net.Error
	switch {
	case err == nil:
		return OK, ""
	case errors.Is(err, memcache.ErrCacheMiss):
		return Miss, ""
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout, err.Error()
	}
	return Failed, err.Error()
}

// checkpoint stops the workload, waits (up to drain) until every key's
// owners hold the same copy, then reads every key through every member
// (recorded as Final reads) and keeps the owners' copies.
func (w *workload) checkpoint(t testing.TB, drain time.Duration) Checkpoint {
	t.Helper()
	w.hold.Lock()
	defer w.hold.Unlock()
	ms := w.cl.members()
	names := make([]string, len(ms))
	for i, n := range ms {
		names[i] = n.name
	}
	rg, err := ring.New(ring.Config{Replicas: 2}, names, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := Checkpoint{Start: w.log.Now(), Owners: make(map[string][]string, len(w.keys))}
	for _, k := range w.keys {
		c.Owners[k] = rg.Owners(rg.Shard([]byte(k)))
	}
	deadline := time.Now().Add(drain)
	for {
		c.Copies = copies(ms, w.keys)
		if agreed(c) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for i, n := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mc := memcache.New(n.addr)
			mc.Timeout = clientTimeout
			for _, k := range w.keys {
				op := get(w.log, mc, n, k, -1-i)
				op.Final = true
				w.log.Add(op)
			}
		}()
	}
	wg.Wait()
	c.End = w.log.Now()
	return c
}

func agreed(c Checkpoint) bool {
	for k, owners := range c.Owners {
		for _, o := range owners[1:] {
			if c.Copies[k][o] != c.Copies[k][owners[0]] || c.Copies[k][o] == Unread {
				return false
			}
		}
	}
	return true
}

// copies reads every node's own copy of every key.
func copies(ms []*node, keys []string) map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(keys))
	for _, k := range keys {
		out[k] = make(map[string]int64, len(ms))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := ownCopies(n.peerAddr, keys)
			mu.Lock()
			for i, k := range keys {
				out[k][n.name] = got[i]
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// ownCopies reads a node's own copy of each key with the peer-only
// "mg <key> v Y0" (this node's store, no routing, no warm-up read-through)
// on its peer port, pipelined; Unread for each key it could not read.
func ownCopies(peerAddr string, keys []string) []int64 {
	out := make([]int64, len(keys))
	for i := range out {
		out[i] = Unread
	}
	nc, err := net.DialTimeout("tcp", peerAddr, time.Second)
	if err != nil {
		return out
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		bw := bufio.NewWriter(nc)
		for _, k := range keys {
			fmt.Fprintf(bw, "mg %s v Y0\r\n", k)
		}
		bw.Flush()
	}()
	br := bufio.NewReader(nc)
	for i := range keys {
		line, err := br.ReadString('\n')
		if err != nil {
			return out
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "EN":
			out[i] = Absent
		case strings.HasPrefix(line, "VA "):
			data, err := br.ReadString('\n')
			if err != nil {
				return out
			}
			if v, err := strconv.ParseInt(strings.TrimRight(data, "\r\n"), 10, 64); err == nil {
				out[i] = v
			}
		}
	}
	return out
}
