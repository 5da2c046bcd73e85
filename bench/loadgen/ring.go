package main

import (
	"context"
	"errors"
	"math/rand/v2"
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
	selDone := make(chan error, 1)
	go func() { selDone <- sel.Run(ctx) }()
	defer func() { cancel(); <-selDone }()
	mc := sel.Client()
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
