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

type hitConfig struct {
	keys      uint64
	valueSize int
	theta     float64
	conns     int
	depth     int
	warmup    uint64
	ops       uint64
	seed      uint64
}

// hitRatio runs a cache-aside load: get a zipf-chosen key; on a miss, set it.
// Each connection sends a batch of gets, then sets the keys that missed, so a
// popular key that misses twice in one batch is set twice, as two clients
// racing on the same miss would. Hits and misses are counted by the client,
// and only after the warm-up gets.
func hitRatio(ctx context.Context, addr string, c hitConfig, out io.Writer) error {
	if c.conns < 1 || c.depth < 1 || c.keys < 2 {
		return errors.New("hitratio: conns and depth must be >= 1, keys >= 2")
	}
	z := newZipf(c.keys, c.theta)
	sc := newScatter(c.keys)
	val := value(c.valueSize)
	perConnWarm := c.warmup / uint64(c.conns)
	perConnOps := c.ops / uint64(c.conns)
	// hits[1], misses[1] count the second half of the measured gets, so a
	// reader can see whether the warm-up reached a steady state.
	var hits, misses [2]atomic.Uint64
	var setErrs, getErrs atomic.Uint64
	start := time.Now()
	err := forEachConn(ctx, addr, c.conns, func(ctx context.Context, i int, cn *conn) error {
		r := rand.New(rand.NewPCG(c.seed, uint64(i)))
		ids := make([]uint64, c.depth)
		missed := make([]uint64, 0, c.depth)
		var done uint64
		total := perConnWarm + perConnOps
		for done < total {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := uint64(c.depth)
			if total-done < n {
				n = total - done
			}
			for j := range n {
				ids[j] = sc.key(z.rank(r))
				cn.sendGet(ids[j])
			}
			_ = cn.nc.SetDeadline(time.Now().Add(ioTimeout))
			if err := cn.flush(); err != nil {
				return err
			}
			missed = missed[:0]
			var h, m uint64
			for j := range n {
				hit, err := cn.readGet()
				if isFatal(err) {
					return err
				}
				switch {
				case err != nil:
					getErrs.Add(1)
				case hit:
					h++
				default:
					m++
					missed = append(missed, ids[j])
				}
			}
			// Count only gets at or past the warm-up boundary.
			half := 0
			if done >= perConnWarm+perConnOps/2 {
				half = 1
			}
			if done >= perConnWarm {
				hits[half].Add(h)
				misses[half].Add(m)
			} else if done+n > perConnWarm {
				// The boundary falls inside this batch: prorate it.
				frac := float64(done+n-perConnWarm) / float64(n)
				hits[0].Add(uint64(float64(h) * frac))
				misses[0].Add(uint64(float64(m) * frac))
			}
			done += n
			if len(missed) == 0 {
				continue
			}
			for _, id := range missed {
				cn.sendSet(id, val)
			}
			if err := cn.flush(); err != nil {
				return err
			}
			for range missed {
				err := cn.readSet()
				if isFatal(err) {
					return err
				}
				if err != nil {
					setErrs.Add(1)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	st, err := serverStats(addr)
	if err != nil {
		return err
	}
	ratio := func(h, m uint64) float64 {
		if h+m == 0 {
			return 0
		}
		return float64(h) / float64(h+m)
	}
	h0, m0, h1, m1 := hits[0].Load(), misses[0].Load(), hits[1].Load(), misses[1].Load()
	h, m := h0+h1, m0+m1
	fmt.Fprintf(out, "keys=%d\ntheta=%g\nvalue_size=%d\nwarmup_gets=%d\nmeasured_gets=%d\nhits=%d\nmisses=%d\nhit_ratio=%.5f\nhit_ratio_first_half=%.5f\nhit_ratio_second_half=%.5f\nget_errors=%d\nset_errors=%d\nseconds=%.3f\n",
		c.keys, c.theta, c.valueSize, perConnWarm*uint64(c.conns), h+m, h, m, ratio(h, m), ratio(h0, m0), ratio(h1, m1), getErrs.Load(), setErrs.Load(), time.Since(start).Seconds())
	for _, k := range []string{"curr_items", "evictions"} {
		fmt.Fprintf(out, "%s=%s\n", k, orNA(st[k]))
	}
	return nil
}
