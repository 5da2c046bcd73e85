package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

type latConfig struct {
	keys      uint64
	valueSize int
	conns     int
	getRatio  float64
	rate      float64
	warmup    time.Duration
	duration  time.Duration
	pids      string // comma-separated
	clkTck    float64
}

// latency runs an open loop at a fixed total rate. Each connection has its
// own schedule: request k is due at start + offset + k*interval, computed in
// advance and never from when the previous reply came back. Latency is
// measured from the due time, so a server stall that delays later sends is
// charged to those requests too (no coordinated omission, as in wrk2). The
// service time, measured from the actual send, is reported beside it, and
// the gap between the two shows how far the client fell behind.
func latency(ctx context.Context, addr string, c latConfig, out io.Writer) error {
	if c.conns < 1 || c.rate <= 0 || c.keys < 1 {
		return errors.New("latency: conns, rate and keys must be positive")
	}
	val := value(c.valueSize)
	interval := time.Duration(float64(c.conns) / c.rate * float64(time.Second))
	if interval <= 0 {
		return errors.New("latency: rate too high for the connection count")
	}
	var (
		mu        sync.Mutex
		resp, svc []time.Duration
		errCount  int
	)
	// Dialing happens inside forEachConn; leave it time before the schedule.
	start := time.Now().Add(200 * time.Millisecond)
	measure := start.Add(c.warmup)
	end := measure.Add(c.duration)
	pids, err := parsePids(c.pids)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	// The servers' CPU over the measured window, read by one goroutine
	// that this function waits for.
	type cpuWindow struct {
		t0, t1 []uint64
		err    error
	}
	cpuDone := make(chan cpuWindow, 1)
	cpuCtx, cpuCancel := context.WithCancel(ctx)
	var cpuRes *cpuWindow
	waitCPU := func() cpuWindow {
		if cpuRes == nil {
			w := <-cpuDone
			cpuRes = &w
		}
		return *cpuRes
	}
	defer func() {
		cpuCancel()
		if len(pids) > 0 {
			waitCPU()
		}
	}()
	if len(pids) > 0 {
		go func() {
			at := func(t time.Time) ([]uint64, error) {
				select {
				case <-cpuCtx.Done():
					return nil, cpuCtx.Err()
				case <-time.After(time.Until(t)):
				}
				return cpuTicksEach(pids)
			}
			t0, err := at(measure)
			if err != nil {
				cpuDone <- cpuWindow{err: err}
				return
			}
			t1, err := at(end)
			cpuDone <- cpuWindow{t0: t0, t1: t1, err: err}
		}()
	}
	err = forEachConn(ctx, addr, c.conns, func(ctx context.Context, i int, cn *conn) error {
		r := rand.New(rand.NewPCG(uint64(i), 11))
		offset := interval * time.Duration(i) / time.Duration(c.conns)
		expect := int(c.duration/interval) + 1
		myResp := make([]time.Duration, 0, expect)
		mySvc := make([]time.Duration, 0, expect)
		myErr := 0
		for k := 0; ; k++ {
			due := start.Add(offset + time.Duration(k)*interval)
			if !due.Before(end) {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			id := r.Uint64N(c.keys)
			get := r.Float64() < c.getRatio
			if get {
				cn.sendGet(id)
			} else {
				cn.sendSet(id, val)
			}
			sent := time.Now()
			_ = cn.nc.SetDeadline(sent.Add(ioTimeout))
			if err := cn.flush(); err != nil {
				return err
			}
			var err error
			if get {
				_, err = cn.readGet()
			} else {
				err = cn.readSet()
			}
			if isFatal(err) {
				return err
			}
			now := time.Now()
			if due.Before(measure) {
				continue
			}
			if err != nil {
				myErr++
			}
			myResp = append(myResp, now.Sub(due))
			mySvc = append(mySvc, now.Sub(sent))
		}
		mu.Lock()
		resp = append(resp, myResp...)
		svc = append(svc, mySvc...)
		errCount += myErr
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	if len(resp) == 0 {
		return errors.New("latency: no samples")
	}
	slices.Sort(resp)
	slices.Sort(svc)
	us := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/1e3) }
	fmt.Fprintf(out, "conns=%d\nrate_target=%.0f\nrate_achieved=%.0f\nsamples=%d\nerrors=%d\n",
		c.conns, c.rate, float64(len(resp))/c.duration.Seconds(), len(resp), errCount)
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}, {"p999", 0.999}} {
		fmt.Fprintf(out, "%s_us=%s\nsvc_%s_us=%s\n", p.name, us(quantile(resp, p.q)), p.name, us(quantile(svc, p.q)))
	}
	fmt.Fprintf(out, "max_us=%s\n", us(resp[len(resp)-1]))
	if len(pids) > 0 {
		w := waitCPU()
		if w.err != nil {
			return w.err
		}
		reportCPU(out, pids, w.t0, w.t1, c.clkTck, len(resp), c.duration.Seconds())
	}
	return nil
}

// quantile returns the q-quantile of sorted samples (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
