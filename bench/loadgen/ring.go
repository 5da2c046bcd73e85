package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/client"
)

// ringLoop is throughput's closed loop through the ring-aware client: c.conns
// goroutines share one gomemcache client whose selector sends each key to
// its owner, and each does one get or set at a time. gomemcache keeps a
// pool per node, so up to c.conns connections open to every node.
func ringLoop(ctx context.Context, addr string, c tputConfig, val []byte, ops, gets, hits, errs *atomic.Uint64) error {
	sel, err := client.New(client.Config{Seeds: strings.Split(addr, ","), Timeout: ioTimeout})
	if err != nil {
		return err
	}
	if err := sel.Refresh(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !c.static { // the static baseline keeps its first ring
		selDone := make(chan error, 1)
		go func() { selDone <- sel.Run(ctx) }()
		defer func() { cancel(); <-selDone }()
	}
	mc := sel.Client()
	if c.static {
		st, err := newStaticSelector(sel)
		if err != nil {
			return err
		}
		mc = memcache.NewFromSelector(st)
		mc.Timeout = ioTimeout
	}
	mc.MaxIdleConns = c.conns
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range c.conns {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for ctx.Err() == nil {
				key := "k:" + strconv.FormatUint(r.Uint64N(c.keys), 10)
				var err error
				if r.Float64() < c.getRatio {
					_, err = mc.Get(key)
					gets.Add(1)
					if err == nil {
						hits.Add(1)
					} else if errors.Is(err, memcache.ErrCacheMiss) {
						err = nil
					}
				} else {
					err = mc.Set(&memcache.Item{Key: key, Value: val})
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.Add(1)
					if errors.Is(err, memcache.ErrNoServers) {
						once.Do(func() { first = err; cancel() })
						return
					}
					continue
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	return first
}

// staticSelector sends each key to its primary owner in one snapshot of
// the ring: what a client connected straight to each key's owner does,
// the floor the ring-aware client's own work (refreshes, failure marks,
// its connection wrapper) is measured against.
type staticSelector struct {
	sel   *client.Selector
	addrs map[string]net.Addr // member name → client address
	all   []net.Addr
}

func newStaticSelector(sel *client.Selector) (*staticSelector, error) {
	st := &staticSelector{sel: sel, addrs: make(map[string]net.Addr)}
	for _, m := range sel.Info().Members {
		a, err := net.ResolveTCPAddr("tcp", m.Addr)
		if err != nil {
			return nil, err
		}
		st.addrs[m.Name] = a
		st.all = append(st.all, a)
	}
	if len(st.all) == 0 {
		return nil, errors.New("ring-static: an empty ring")
	}
	return st, nil
}

func (st *staticSelector) PickServer(key string) (net.Addr, error) {
	if o := st.sel.Owners(key); len(o) > 0 {
		if a := st.addrs[o[0]]; a != nil {
			return a, nil
		}
	}
	return nil, memcache.ErrNoServers
}

func (st *staticSelector) Each(f func(net.Addr) error) error {
	for _, a := range st.all {
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}
