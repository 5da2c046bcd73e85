package cluster

// Cluster benchmarks with real processes. They measure and report (with
// b.ReportMetric); they never assert a speed. Each starts its own etcd and
// nodes, so run them with -benchtime 1x.

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/testetcd"
	"shoal/internal/testutil"
	"shoal/ring"
)

// lagSamplesPerOp is how many measured writes one b.N iteration makes, so
// that -benchtime 1x still gives meaningful percentiles.
const lagSamplesPerOp = 5000

// pollConn is one text-protocol connection for a tight polling loop.
type pollConn struct {
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(addr string) (*pollConn, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return &pollConn{nc: nc, br: bufio.NewReader(nc)}, nil
}

// get returns the value of key, or "" with ok false on a miss.
func (c *pollConn) get(key string) (val string, ok bool, err error) {
	c.nc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.nc.Write([]byte("get " + key + "\r\n")); err != nil {
		return "", false, err
	}
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", false, err
	}
	if line == "END\r\n" {
		return "", false, nil
	}
	f := strings.Fields(line) // VALUE <key> <flags> <bytes> [<cas>]
	if len(f) < 4 || f[0] != "VALUE" {
		return "", false, fmt.Errorf("get %s: %q", key, line)
	}
	n, err := strconv.Atoi(f[3])
	if err != nil {
		return "", false, fmt.Errorf("get %s: %q", key, line)
	}
	buf := make([]byte, n+2)
	if _, err := ioReadFull(c.br, buf); err != nil {
		return "", false, err
	}
	end, err := c.br.ReadString('\n')
	if err != nil || end != "END\r\n" {
		return "", false, fmt.Errorf("get %s: after the value: %q, %v", key, end, err)
	}
	return string(buf[:n]), true, nil
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return sorted[i]
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkReplicationLag: writes through the primary's client port of keys
// it owns, each timed until the value is visible on the replica's peer
// port, under a background load of 8 writers through all nodes. The lag is
// measured from the set's reply (STORED) to the first poll that sees the
// value; "from-send" adds the set's round trip. Each b.N iteration is
// lagSamplesPerOp measured writes.
func BenchmarkReplicationLag(b *testing.B) {
	etcd := testetcd.Start(b)
	endpoints := strings.Join(etcd.Endpoints(), ",")
	names := []string{"n1", "n2", "n3"}
	nodes := make([]*pnode, len(names))
	for i, name := range names {
		nodes[i] = startPeerNode(b, endpoints, name, "--replicas", "2", "--lease-ttl", "25")
	}
	testutil.WaitUntil(b, 20*time.Second, "converged", func() (bool, string) { return converged(procsOf(nodes), names...) })
	st := clusterStats(nodes[0].addr)
	r, err := ring.New(ring.Config{Replicas: 2}, names, 0)
	if err != nil {
		b.Fatal(err)
	}
	if st["cluster_shards"] != strconv.Itoa(r.NumShards()) {
		b.Fatalf("the cluster has %s shards, a default ring %d: cannot compute owners", st["cluster_shards"], r.NumShards())
	}
	idx := map[string]int{"n1": 0, "n2": 1, "n3": 2}

	// Keys whose primary is n1, with their replica.
	total := b.N * lagSamplesPerOp
	type key struct {
		name    string
		replica int
	}
	keys := make([]key, 0, total)
	for i := 0; len(keys) < total; i++ {
		k := fmt.Sprintf("lag-%d", i)
		o := r.Owners(r.Shard([]byte(k)))
		if o[0] != "n1" {
			continue
		}
		keys = append(keys, key{name: k, replica: idx[o[1]]})
	}

	// Check the computed owners on the first key: it lands on n1 and its
	// replica, not on the third node.
	primary := mc(nodes[0].addr, 1)
	if err := primary.Set(&memcache.Item{Key: keys[0].name, Value: []byte("probe")}); err != nil {
		b.Fatal(err)
	}
	testutil.WaitUntil(b, 5*time.Second, "probe key on its computed primary and replica", func() (bool, string) {
		var seen []string
		for i, n := range nodes {
			it, err := mc(n.peerAddr, 1).Get(keys[0].name)
			has := err == nil && string(it.Value) == "probe"
			seen = append(seen, fmt.Sprintf("%s=%v", names[i], has))
			if has != (i == 0 || i == keys[0].replica) {
				return false, strings.Join(seen, " ")
			}
		}
		return true, ""
	})

	pollers := make([]*pollConn, len(nodes))
	for i, n := range nodes {
		if pollers[i], err = dialRaw(n.peerAddr); err != nil {
			b.Fatal(err)
		}
		defer pollers[i].nc.Close()
	}

	// Background load: 8 writers of other keys through all nodes.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bgOps, bgErrs atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients := clientsOf(nodes)
			val := []byte(strings.Repeat("x", 100))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("bg-%d-%d", w, i%10000)
				if err := clients[i%len(clients)].Set(&memcache.Item{Key: k, Value: val}); err != nil {
					bgErrs.Add(1)
				}
				bgOps.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // let the load start

	lags := make([]time.Duration, 0, total)
	fromSend := make([]time.Duration, 0, total)
	var polls int
	var timeouts examples
	timeouts.max = 5
	b.ResetTimer()
	benchStart := time.Now()
	for i, k := range keys {
		v := fmt.Sprintf("v-%d-%d", i, time.Now().UnixNano())
		sent := time.Now()
		if err := primary.Set(&memcache.Item{Key: k.name, Value: []byte(v)}); err != nil {
			b.Fatalf("set %s through n1: %v", k.name, err)
		}
		acked := time.Now()
		p := pollers[k.replica]
		for {
			got, ok, err := p.get(k.name)
			polls++
			if err != nil {
				b.Fatalf("poll %s on %s's peer port: %v", k.name, names[k.replica], err)
			}
			now := time.Now()
			if ok && got == v {
				lags = append(lags, now.Sub(acked))
				fromSend = append(fromSend, now.Sub(sent))
				break
			}
			if now.Sub(acked) > 5*time.Second {
				timeouts.add("%s not on %s after 5 s (saw %q, present=%v)", k.name, names[k.replica], got, ok)
				break
			}
		}
	}
	elapsed := time.Since(benchStart)
	b.StopTimer()
	close(stop)
	wg.Wait()

	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	sort.Slice(fromSend, func(i, j int) bool { return fromSend[i] < fromSend[j] })
	p50, p99, mx := percentile(lags, 0.50), percentile(lags, 0.99), percentile(lags, 1)
	b.ReportMetric(msf(p50), "p50-ms")
	b.ReportMetric(msf(p99), "p99-ms")
	b.ReportMetric(msf(mx), "max-ms")
	b.ReportMetric(msf(percentile(fromSend, 0.99)), "p99-from-send-ms")
	b.ReportMetric(float64(bgOps.Load())/elapsed.Seconds(), "bg-sets/s")
	b.Logf("%d measured writes in %v (%.1f polls each) under %d background sets (%d errors): lag after STORED p50 %.3f ms, p90 %.3f ms, p99 %.3f ms, max %.3f ms; from send p50 %.3f ms, p99 %.3f ms; target p99 ≤ 5 ms",
		len(lags), elapsed.Round(time.Millisecond), float64(polls)/float64(len(keys)), bgOps.Load(), bgErrs.Load(),
		msf(p50), msf(percentile(lags, 0.90)), msf(p99), msf(mx), msf(percentile(fromSend, 0.5)), msf(percentile(fromSend, 0.99)))
	if timeouts.n > 0 {
		b.Errorf("writes never replicated: %s", &timeouts)
	}
}

// zipfGen draws ranks in [0, n) with P(k) ∝ 1/(k+1)^s; it takes s < 1,
// which math/rand's Zipf does not.
type zipfGen struct{ cdf []float64 }

func newZipf(n int, s float64) *zipfGen {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return &zipfGen{cdf: cdf}
}

func (z *zipfGen) next(r *rand.Rand) int {
	return sort.SearchFloat64s(z.cdf, r.Float64())
}

// BenchmarkJoinHitRatioDip: cache-aside load (get; on miss, set) with zipf
// 0.99 over 100,000 keys of 200 bytes from 8 goroutines through n1..n3
// round-robin (the clients keep their server list: n4 is not added to it).
// After the hit ratio is stable, n4 joins and the load runs 20 s more. The
// hit ratio is computed per 500 ms window from the clients' own counts.
// This runs once whatever b.N is: the measurement is one timeline.
func BenchmarkJoinHitRatioDip(b *testing.B) {
	const (
		nkeys   = 100_000
		workers = 8
		window  = 500 * time.Millisecond
		after   = 20 * time.Second
	)
	etcd := testetcd.Start(b)
	endpoints := strings.Join(etcd.Endpoints(), ",")
	flags := []string{"--replicas", "2", "-m", "64", "--lease-ttl", "10"}
	names := []string{"n1", "n2", "n3"}
	nodes := make([]*pnode, len(names))
	for i, name := range names {
		nodes[i] = startPeerNode(b, endpoints, name, flags...)
	}
	testutil.WaitUntil(b, 20*time.Second, "converged", func() (bool, string) { return converged(procsOf(nodes), names...) })

	z := newZipf(nkeys, 0.99)
	var hits, misses, errs atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients := clientsOf(nodes)
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			val := []byte(strings.Repeat("v", 200))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := "zk-" + strconv.Itoa(z.next(rng))
				c := clients[i%len(clients)]
				_, err := c.Get(k)
				switch {
				case err == nil:
					hits.Add(1)
				case errors.Is(err, memcache.ErrCacheMiss):
					misses.Add(1)
					if err := c.Set(&memcache.Item{Key: k, Value: val}); err != nil {
						errs.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("set %s: %v", k, err))
					}
				default:
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("get %s: %v", k, err))
				}
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()

	type win struct {
		at         time.Duration // end of the window, from the start
		h, m, e    int64
		ratio      float64
		afterJoin  bool
		sinceJoinS float64
	}
	var wins []win
	start := time.Now()
	var lh, lm, le int64
	sample := func(afterJoin bool, joined time.Time) win {
		h, m, e := hits.Load(), misses.Load(), errs.Load()
		w := win{at: time.Since(start), h: h - lh, m: m - lm, e: e - le, afterJoin: afterJoin}
		lh, lm, le = h, m, e
		if w.h+w.m > 0 {
			w.ratio = 100 * float64(w.h) / float64(w.h+w.m)
		}
		if afterJoin {
			w.sinceJoinS = time.Since(joined).Seconds()
		}
		wins = append(wins, w)
		return w
	}
	// Warm up: stable when the last three 1 s windows (pairs of 500 ms
	// windows) differ by under 0.5 points; at least 5 s, at most 40 s.
	oneSec := func(i int) float64 { // 1 s window ending at wins[i]
		a, c := wins[i-1], wins[i]
		if a.h+a.m+c.h+c.m == 0 {
			return 0
		}
		return 100 * float64(a.h+c.h) / float64(a.h+a.m+c.h+c.m)
	}
	stable := false
	for time.Since(start) < 40*time.Second {
		time.Sleep(window)
		sample(false, time.Time{})
		n := len(wins)
		if time.Since(start) >= 5*time.Second && n >= 6 {
			s1, s2, s3 := oneSec(n-1), oneSec(n-3), oneSec(n-5)
			if math.Abs(s1-s2) < 0.5 && math.Abs(s2-s3) < 0.5 {
				stable = true
				break
			}
		}
	}
	warm := time.Since(start)
	var base float64
	for _, w := range wins[len(wins)-5:] {
		base += w.ratio
	}
	base /= 5

	n4 := startPeerNode(b, endpoints, "n4", flags...)
	joined := time.Now()
	convergedAt := time.Duration(-1)
	minRatio, minAt := 101.0, 0.0
	for time.Since(joined) < after {
		time.Sleep(window)
		w := sample(true, joined)
		if w.ratio < minRatio {
			minRatio, minAt = w.ratio, w.sinceJoinS
		}
		if convergedAt < 0 {
			if ok, _ := converged(append(procsOf(nodes), n4.proc), "n1", "n2", "n3", "n4"); ok {
				convergedAt = time.Since(joined)
			}
		}
	}
	close(stop)
	wg.Wait()

	dip := base - minRatio
	b.ReportMetric(base, "baseline-hit-%")
	b.ReportMetric(minRatio, "min-hit-%")
	b.ReportMetric(dip, "dip-points")
	var tl []string
	for _, w := range wins {
		mark := ""
		if w.afterJoin {
			mark = fmt.Sprintf(" (+%.1fs after join)", w.sinceJoinS)
		}
		tl = append(tl, fmt.Sprintf("%6.1fs %6.2f%% hits=%d misses=%d errors=%d%s", w.at.Seconds(), w.ratio, w.h, w.m, w.e, mark))
	}
	b.Logf("timeline (500 ms windows):\n\t%s", strings.Join(tl, "\n\t"))
	b.Logf("warm-up %v (stable=%v); baseline %.2f%% (mean of the last 5 windows before the join); n4 converged %v after its start; minimum window after the join %.2f%% at +%.1fs; dip %.2f points (target ≤ 2); client errors %d, first: %v",
		warm.Round(time.Millisecond), stable, base, convergedAt.Round(time.Millisecond), minRatio, minAt, dip, errs.Load(), firstErr.Load())
	if !stable {
		b.Logf("note: the hit ratio was not stable (three 1 s windows within 0.5 points) after 40 s of warm-up; the join happened anyway")
	}
	if convergedAt < 0 {
		b.Errorf("n4 never converged with n1..n3 within %v of its start", after)
	}
}
