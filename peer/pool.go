package peer

import "sync"

// Pool shares one Client per peer address among the parts of a node that
// talk to that peer, the router forwarding requests and the replicator
// pushing writes, as dskit keeps one client pool per peer: their requests
// share connections and writes, and the peer reads them in the same
// batches. Each Get is matched by one Put; the last Put of an address
// closes its Client. Safe for concurrent use.
type Pool struct {
	cfg Config // Addr is set per Client

	mu     sync.Mutex
	byAddr map[string]*pooled
}

type pooled struct {
	c    *Client
	refs int
}

// NewPool returns a Pool whose Clients are made with cfg (its Addr
// ignored).
func NewPool(cfg Config) *Pool {
	return &Pool{cfg: cfg, byAddr: make(map[string]*pooled)}
}

// Get returns the Client for addr, made on its first use.
func (p *Pool) Get(addr string) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.byAddr[addr]; e != nil {
		e.refs++
		return e.c, nil
	}
	cfg := p.cfg
	cfg.Addr = addr
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	p.byAddr[addr] = &pooled{c: c, refs: 1}
	return c, nil
}

// Put ends one use of addr's Client, and closes it after the last: its
// queued requests fail with ErrClosed, and Put waits for its goroutines
// (a dial in progress among them), so call it off any hot path.
func (p *Pool) Put(addr string) {
	p.mu.Lock()
	e := p.byAddr[addr]
	if e == nil {
		p.mu.Unlock()
		return
	}
	e.refs--
	last := e.refs == 0
	if last {
		delete(p.byAddr, addr)
	}
	p.mu.Unlock()
	if last {
		e.c.Close()
	}
}
