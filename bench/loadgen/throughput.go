package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

type tputConfig struct {
	keys      uint64
	valueSize int
	conns     int
	depth     int
	getRatio  float64
	warmup    time.Duration
	duration  time.Duration
	pids      string // comma-separated
	clkTck    float64
	ring      bool
	static    bool // with ring: one snapshot of the ring, never refreshed; no failover
}

// throughput runs a closed loop: each connection sends depth requests (gets
// and sets of uniform random keys), flushes once, reads every reply, repeats.
// Operations completed inside the measured window count; with -pid, the
// server's CPU time over the same window gives operations per CPU-second.
func throughput(ctx context.Context, addr string, c tputConfig, out io.Writer) error {
	if c.conns < 1 || c.depth < 1 || c.keys < 1 {
		return errors.New("throughput: conns, depth and keys must be >= 1")
	}
	if c.ring && c.depth != 1 {
		return errors.New("throughput: -ring drives gomemcache, which does not pipeline: depth must be 1")
	}
	pids, err := parsePids(c.pids)
	if err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	val := value(c.valueSize)
	var ops, gets, hits, errs atomic.Uint64
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		if c.ring {
			done <- ringLoop(runCtx, addr, c, val, &ops, &gets, &hits, &errs)
			return
		}
		done <- forEachConn(runCtx, addr, c.conns, func(ctx context.Context, i int, cn *conn) error {
			r := rand.New(rand.NewPCG(uint64(i), 7))
			isGet := make([]bool, c.depth)
			for ctx.Err() == nil {
				for j := range isGet {
					id := r.Uint64N(c.keys)
					isGet[j] = r.Float64() < c.getRatio
					if isGet[j] {
						cn.sendGet(id)
					} else {
						cn.sendSet(id, val)
					}
				}
				_ = cn.nc.SetDeadline(time.Now().Add(ioTimeout))
				if err := cn.flush(); err != nil {
					return err
				}
				var g, h, e uint64
				for _, get := range isGet {
					var err error
					if get {
						var hit bool
						hit, err = cn.readGet()
						g++
						if hit {
							h++
						}
					} else {
						err = cn.readSet()
					}
					if isFatal(err) {
						return err
					}
					if err != nil {
						e++
					}
				}
				ops.Add(uint64(c.depth))
				gets.Add(g)
				hits.Add(h)
				errs.Add(e)
			}
			return nil
		})
	}()

	type snap struct {
		t                    time.Time
		ops, gets, hits, err uint64
		cpu                  []uint64
	}
	take := func() (snap, error) {
		s := snap{t: time.Now(), ops: ops.Load(), gets: gets.Load(), hits: hits.Load(), err: errs.Load()}
		if len(pids) > 0 {
			var err error
			if s.cpu, err = cpuTicksEach(pids); err != nil {
				return s, err
			}
		}
		return s, nil
	}
	wait := func(d time.Duration) error {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("connections stopped early")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := wait(c.warmup); err != nil {
		return err
	}
	s0, err := take()
	if err != nil {
		return err
	}
	if err := wait(c.duration); err != nil {
		return err
	}
	s1, err := take()
	if err != nil {
		return err
	}
	cancel()
	if err := <-done; err != nil {
		return err
	}
	secs := s1.t.Sub(s0.t).Seconds()
	n := s1.ops - s0.ops
	g := s1.gets - s0.gets
	fmt.Fprintf(out, "conns=%d\ndepth=%d\nget_ratio=%g\nvalue_size=%d\nseconds=%.3f\nops=%d\nops_per_sec=%.0f\n",
		c.conns, c.depth, c.getRatio, c.valueSize, secs, n, float64(n)/secs)
	hr := 0.0
	if g > 0 {
		hr = float64(s1.hits-s0.hits) / float64(g)
	}
	fmt.Fprintf(out, "get_hit_ratio=%.4f\nerrors=%d\n", hr, s1.err-s0.err)
	if len(pids) > 0 {
		reportCPU(out, pids, s0.cpu, s1.cpu, c.clkTck, int(n), secs)
	}
	return nil
}
