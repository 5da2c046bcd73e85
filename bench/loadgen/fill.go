package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ioTimeout bounds every batch: a server that stops answering ends the run
// with an error instead of hanging it.
const ioTimeout = 10 * time.Second

type fillConfig struct {
	keys      uint64
	valueSize int
	conns     int
	depth     int
	stats     string // where to read the stats from; "" means addr
}

// fill sets keys k:0 .. k:N-1 once each, pipelined, then prints what the
// server says it holds.
func fill(ctx context.Context, addr string, c fillConfig, out io.Writer) error {
	if c.conns < 1 || c.depth < 1 {
		return errors.New("fill: conns and depth must be >= 1")
	}
	val := value(c.valueSize)
	var stored, rejected atomic.Uint64
	start := time.Now()
	err := forEachConn(ctx, addr, c.conns, func(ctx context.Context, i int, cn *conn) error {
		id := uint64(i)
		step := uint64(c.conns)
		for id < c.keys {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := 0
			for ; n < c.depth && id < c.keys; n++ {
				cn.sendSet(id, val)
				id += step
			}
			_ = cn.nc.SetDeadline(time.Now().Add(ioTimeout))
			if err := cn.flush(); err != nil {
				return err
			}
			for range n {
				err := cn.readSet()
				if isFatal(err) {
					return err
				}
				if err != nil {
					rejected.Add(1)
				} else {
					stored.Add(1)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	// Several addresses: each figure is the sum over the servers.
	st := map[string]string{}
	from := addr
	if c.stats != "" {
		from = c.stats
	}
	for _, a := range strings.Split(from, ",") {
		one, err := serverStats(a)
		if err != nil {
			return err
		}
		for k, v := range one {
			n, err1 := strconv.ParseUint(v, 10, 64)
			m, err2 := strconv.ParseUint(st[k], 10, 64)
			if _, seen := st[k]; !seen || err1 != nil || err2 != nil {
				st[k] = v
				continue
			}
			st[k] = strconv.FormatUint(m+n, 10)
		}
	}
	fmt.Fprintf(out, "keys=%d\nvalue_size=%d\nstored=%d\nrejected=%d\nfill_seconds=%.3f\n",
		c.keys, c.valueSize, stored.Load(), rejected.Load(), elapsed.Seconds())
	for _, k := range []string{"curr_items", "evictions", "bytes", "limit_maxbytes"} {
		fmt.Fprintf(out, "%s=%s\n", k, orNA(st[k]))
	}
	return nil
}

func orNA(s string) string {
	if s == "" {
		return "NA"
	}
	return s
}

func serverStats(addr string) (map[string]string, error) {
	cn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	defer cn.close()
	_ = cn.nc.SetDeadline(time.Now().Add(ioTimeout))
	return cn.stats()
}

// forEachConn dials n connections (round robin over the comma-separated
// addresses in addr), runs f on each in its own goroutine, and
// returns after all of them have returned; the first error cancels the rest.
func forEachConn(ctx context.Context, addr string, n int, f func(ctx context.Context, i int, c *conn) error) error {
	conns := make([]*conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	addrs := strings.Split(addr, ",")
	for i := range n {
		c, err := dial(addrs[i%len(addrs)])
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i, c := range conns {
		wg.Go(func() {
			if err := f(ctx, i, c); err != nil && !errors.Is(err, context.Canceled) {
				once.Do(func() { first = fmt.Errorf("conn %d: %w", i, err); cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.Canceled) {
		return ctx.Err()
	}
	return first
}
