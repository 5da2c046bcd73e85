package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

const usage = "usage: loadgen {wait|freeport|fill|hitratio|throughput|latency} [flags]"

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:11211", "server address (loopback); fill, throughput and latency take a comma-separated list and spread connections over it")
	switch cmd {
	case "freeport":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		fmt.Fprintln(out, l.Addr().(*net.TCPAddr).Port)
		return nil
	case "wait":
		timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return waitReady(ctx, *addr, *timeout, out)
	case "fill":
		var c fillConfig
		fs.Uint64Var(&c.keys, "keys", 2_000_000, "keys to write")
		fs.IntVar(&c.valueSize, "value", 100, "value size in bytes")
		fs.IntVar(&c.conns, "conns", 4, "connections")
		fs.IntVar(&c.depth, "depth", 64, "pipeline depth")
		fs.StringVar(&c.stats, "stats", "", "addresses to read stats from, comma separated (default -addr; a proxy such as nutcracker has no stats command)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return fill(ctx, *addr, c, out)
	case "hitratio":
		var c hitConfig
		fs.Uint64Var(&c.keys, "keys", 1_000_000, "key space")
		fs.IntVar(&c.valueSize, "value", 200, "value size in bytes")
		fs.Float64Var(&c.theta, "s", 0.99, "zipf exponent, 0 < s < 1")
		fs.IntVar(&c.conns, "conns", 4, "connections")
		fs.IntVar(&c.depth, "depth", 16, "gets in flight per connection (misses are set after the batch)")
		fs.Uint64Var(&c.warmup, "warmup", 3_000_000, "get operations before measuring")
		fs.Uint64Var(&c.ops, "ops", 2_000_000, "get operations measured")
		fs.Uint64Var(&c.seed, "seed", 1, "random seed (same seed, same key sequence per connection)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return hitRatio(ctx, *addr, c, out)
	case "throughput":
		var c tputConfig
		fs.Uint64Var(&c.keys, "keys", 100_000, "key space (preload it with fill first)")
		fs.IntVar(&c.valueSize, "value", 100, "value size in bytes")
		fs.IntVar(&c.conns, "conns", 32, "connections")
		fs.IntVar(&c.depth, "depth", 1, "pipeline depth")
		fs.Float64Var(&c.getRatio, "get", 0.9, "fraction of gets")
		fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured run-in")
		fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured window")
		fs.StringVar(&c.pids, "pid", "", "server pids, comma separated: report their summed CPU time over the window (Linux /proc)")
		fs.BoolVar(&c.ring, "ring", false, "drive the cluster through the ring-aware Go client (package client, gomemcache), each key sent to its owner; -addr are seeds; depth 1 only")
		fs.BoolVar(&c.static, "static", false, "with -ring: the baseline for the ring-aware client, gomemcache sending each key straight to its owner from one snapshot of the ring (no refresh, no failover, gomemcache's own dialing)")
		fs.Float64Var(&c.clkTck, "clk-tck", 100, "clock ticks per second (getconf CLK_TCK)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return throughput(ctx, *addr, c, out)
	case "latency":
		var c latConfig
		fs.Uint64Var(&c.keys, "keys", 100_000, "key space (preload it with fill first)")
		fs.IntVar(&c.valueSize, "value", 100, "value size in bytes")
		fs.IntVar(&c.conns, "conns", 32, "connections")
		fs.Float64Var(&c.getRatio, "get", 0.9, "fraction of gets")
		fs.Float64Var(&c.rate, "rate", 10000, "requests per second, all connections together")
		fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured run-in")
		fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured window")
		fs.StringVar(&c.pids, "pid", "", "server pids, comma separated: report their summed CPU time over the window (Linux /proc)")
		fs.Float64Var(&c.clkTck, "clk-tck", 100, "clock ticks per second (getconf CLK_TCK)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return latency(ctx, *addr, c, out)
	}
	return fmt.Errorf("unknown subcommand %q; %s", cmd, usage)
}

// waitReady dials until the server answers "version" or the timeout passes.
func waitReady(ctx context.Context, addr string, timeout time.Duration, out io.Writer) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := dial(addr)
		if err == nil {
			_ = c.nc.SetDeadline(time.Now().Add(time.Second))
			v, verr := c.version()
			c.close()
			if verr == nil {
				fmt.Fprintf(out, "version=%s\n", strings.ReplaceAll(v, " ", "_"))
				return nil
			}
			err = verr
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("server at %s not ready after %v: %v", addr, timeout, last)
}

// cpuTicks reads utime+stime (fields 14 and 15) of /proc/PID/stat.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it follow ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad cpu fields in /proc/%d/stat", pid)
	}
	return u + s, nil
}

// parsePids parses a comma-separated list of pids; "" is none.
func parsePids(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var pids []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("bad pid %q", f)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// cpuTicksEach reads cpuTicks of every pid, in order.
func cpuTicksEach(pids []int) ([]uint64, error) {
	ticks := make([]uint64, len(pids))
	for i, p := range pids {
		t, err := cpuTicks(p)
		if err != nil {
			return nil, err
		}
		ticks[i] = t
	}
	return ticks, nil
}

// reportCPU prints the CPU the pids spent between the readings t0 and t1
// (cpuTicksEach) for ops operations over secs seconds: summed, and with
// several pids each one's microseconds per operation (pid_cpu_us_per_op,
// pid:µs pairs in -pid's order), which shows where a cluster spends it.
func reportCPU(out io.Writer, pids []int, t0, t1 []uint64, clkTck float64, ops int, secs float64) {
	var sum uint64
	each := make([]string, len(pids))
	for i := range pids {
		sum += t1[i] - t0[i]
		each[i] = fmt.Sprintf("%d:%.3f", pids[i], float64(t1[i]-t0[i])/clkTck*1e6/float64(max(ops, 1)))
	}
	cpu := float64(sum) / clkTck
	fmt.Fprintf(out, "server_cpu_seconds=%.2f\nserver_cpu_util=%.3f\n", cpu, cpu/secs)
	if cpu > 0 {
		fmt.Fprintf(out, "ops_per_cpu_sec=%.0f\ncpu_us_per_op=%.3f\n", float64(ops)/cpu, cpu*1e6/float64(ops))
	} else {
		fmt.Fprintf(out, "ops_per_cpu_sec=NA\ncpu_us_per_op=NA\n")
	}
	if len(pids) > 1 {
		fmt.Fprintf(out, "pid_cpu_us_per_op=%s\n", strings.Join(each, ","))
	}
}

// value returns a value of n bytes.
func value(n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = 'a' + byte(i%26)
	}
	return v
}
