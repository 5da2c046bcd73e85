package hostile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/internal/statsread"
	"shoal/internal/testutil"
)

var syscallZero = syscall.Signal(0)

// attack is one adversarial case. run drives the server at addr and
// returns once the attack is over (its connections closed).
type attack struct {
	// flags beyond -m 64 -c 8192; shoalFlags, shoal's alone
	flags, shoalFlags []string
	// budgetMB is the most shoal's resident memory may reach, from the
	// start of the process to the end of the attack: at most -m plus 64 MB
	// (the node itself is ~30 MB resident idle; the 64 MB of items are
	// resident only where the case stores them). Memory, not time: the
	// suite asserts no speed.
	budgetMB int
	// cluster: shoal runs as a one-node cluster (--dev, its etcd in the
	// process): a cluster.Router serves, and a multi-get goes through its
	// GetMulti. memcached, with -compare, runs as usual.
	cluster bool
	// peer: a second shoal node joins the first's cluster (--replicas 1):
	// about half the keys are its, and the first forwards for them.
	// memcached, with -compare, runs alone.
	peer bool
	run  func(t *testing.T, s *server)
}

const bigValue = 1_000_000 // memcached's default -I takes a value this size

// getLine is "get" naming n keys cycled over prefix0..prefix<of-1>.
func getLine(prefix string, n, of int) []byte {
	var b bytes.Buffer
	b.WriteString("get")
	for i := range n {
		fmt.Fprintf(&b, " %s%d", prefix, i%of)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

var attacks = map[string]attack{
	// One connection asks for 3000 keys naming 60 resident 1 MB values and
	// never reads: 3 GB of replies if the node materialises them.
	"multiget unread": {budgetMB: 128, run: func(t *testing.T, s *server) {
		preload(t, s.addr, "big", 60, bigValue)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(getLine("big", 3000, 60))
		time.Sleep(*hold)
		c.Close()
	}},
	// The same with 500 keys, read to the end: every value arrives. 500 MB
	// of replies, four times the budget: the peak is reached within the
	// first hundred values (2,000 keys, 2 GB, peaked the same: 92 and
	// 110 MB against 89 and 111, with 1.4 CPU-seconds more for the two
	// cases).
	"multiget read": {budgetMB: 128, run: multigetRead},
	// "multiget read" on a one-node cluster: the router held a copy of
	// every local value of a 32-key batch (212 MB resident); the budget
	// leaves room for the embedded etcd (~35 MB).
	"multiget read, cluster node": {cluster: true, budgetMB: 168, run: multigetRead},
	// 16 connections at once, each asking for small values, then 1 MB
	// ones, and reading them, through a node of a two-node cluster: it
	// holds the values the other node returns until their turn comes. The
	// small ones keep the batches wide (a batch is sized by the values
	// recent calls returned), so up to 32 large values followed per batch:
	// the node peaked at 349-413 MB run alone (305-348 beside the other
	// cases) until what it holds was bounded node-wide (cluster/hold.go).
	// With that bound 77-85 MB (2026-12-07, run alone); without it (its
	// limit set to 1 TiB) 224-284 MB, which the budget catches: the
	// cluster node's above, less the 16 replies the bound now leaves out.
	// One round of keys reaches that peak; three took 8.5 s against 3.8.
	"wide multi-gets, two-node cluster": {cluster: true, peer: true, budgetMB: 160, run: multigetWide},
	// 4000 connections each start a 1 MB set, send half of it and stall.
	"4000 half-sent values": {flags: []string{"-c", "8192"}, budgetMB: 128, run: func(t *testing.T, s *server) {
		half := append([]byte("set half 0 0 1000000\r\n"), bytes.Repeat([]byte{'h'}, bigValue/2)...)
		closeAll := dialMany(t, s.addr, 4000, half)
		time.Sleep(*hold)
		if s.name == "shoal" {
			// Most were refused for the connection memory limit, and said so.
			if st := stats(t, s); st["read_buf_oom"] == "0" || st["read_buf_bytes"] == "0" {
				t.Errorf("read_buf_oom %s, read_buf_bytes %s during the attack", st["read_buf_oom"], st["read_buf_bytes"])
			}
		}
		closeAll()
	}},
	// 4000 connections each send 2047 bytes of a line, no newline.
	"4000 unterminated lines": {flags: []string{"-c", "8192"}, budgetMB: 56, run: func(t *testing.T, s *server) {
		closeAll := dialMany(t, s.addr, 4000, bytes.Repeat([]byte{'x'}, 2047))
		time.Sleep(*hold)
		closeAll()
	}},
	// 300 connections each store a 900 KB value, then stay open and idle:
	// a read buffer grown for one large request must shrink back.
	"300 idle after a large set": {flags: []string{"-c", "8192"}, budgetMB: 96, run: func(t *testing.T, s *server) {
		val := bytes.Repeat([]byte{'b'}, 900_000)
		var conns []net.Conn
		for i := range 300 {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			fmt.Fprintf(c, "set grow%d 0 0 %d\r\n", i%8, len(val))
			c.Write(val)
			c.Write([]byte("\r\n"))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || (line != "STORED\r\n" && !strings.HasPrefix(line, "SERVER_ERROR")) {
				t.Fatalf("set %d: %q %v", i, line, err)
			}
		}
		time.Sleep(*hold)
		for _, c := range conns {
			c.Close()
		}
	}},
	// A get line of 2 MiB (memcached reads it whole; shoal answers it too).
	"2 MiB get line": {budgetMB: 64, run: func(t *testing.T, s *server) {
		preload(t, s.addr, "small", 100, 10)
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		line := getLine("small", 2<<20/8, 100)
		go c.Write(line)
		values, err := readValues(bufio.NewReader(c))
		if err != nil || values != 2<<20/8 {
			t.Fatalf("%s: %d values, %v", s.name, values, err)
		}
	}},
}

// devEtcdAddr returns a loopback address for a --dev etcd whose port and
// the next (its peer port) are free and come from the test process's
// walk of free ports, which hands neither to the nodes afterwards (a pick
// of its own once gave the etcd the port the node had just bound).
func devEtcdAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testutil.FreePortPair(t)))
}

// multigetReadKeys is how many keys multigetRead asks for.
const multigetReadKeys = 500

// multigetRead asks, on one connection, for multigetReadKeys keys naming
// 60 resident 1 MB values and reads every value.
func multigetRead(t *testing.T, s *server) {
	preload(t, s.addr, "big", 60, bigValue)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	go c.Write(getLine("big", multigetReadKeys, 60))
	values, err := readValues(bufio.NewReaderSize(c, 64<<10))
	if err != nil || values != multigetReadKeys {
		t.Fatalf("%s: %d values, %v", s.name, values, err)
	}
}

// multigetWide: 16 connections at once each ask for 64 small values then
// 32 of the 40 values of 1 MB, and read every value.
func multigetWide(t *testing.T, s *server) {
	preload(t, s.addr, "big", 40, bigValue) // all resident on one node too
	preload(t, s.addr, "sm", 64, 10)
	var b bytes.Buffer
	b.WriteString("get")
	for i := range 64 {
		fmt.Fprintf(&b, " sm%d", i)
	}
	for i := range 32 {
		fmt.Fprintf(&b, " big%d", i)
	}
	b.WriteString("\r\n")
	line := b.Bytes()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Minute))
			go c.Write(line)
			if values, err := readValues(bufio.NewReaderSize(c, 64<<10)); err != nil || values != 96 {
				errs <- fmt.Errorf("%d values, %v", values, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%s: %v", s.name, err)
	}
}

// unreadGets is "1000 unread 1 MB gets" (TestUnreadGets): 1000
// connections with small receive buffers each send 8 gets of 1 MB values
// and read nothing. A node that answered each connection's first value
// whatever the others held, and copied what the socket did not take,
// held 650-920 MB (memcached sends items by reference: 19 MB); 164-182 MB
// since retrievals wait while the replies hold more than the
// connections' limit (server/connmem.go). Meanwhile a client served
// before the attack asks for a small and a large value, and must get them
// within 5 s; a client that connects during it, for a small one, within
// 2 s (its reply fits the buffer every connection is lent anyway, so it
// does not wait for the limit: server/connidle.go, fitsBase; before, it
// waited its turn behind the 1000 that read nothing, 10-12 s).
func unreadGets(t *testing.T, s *server) {
	preload(t, s.addr, "big", 8, bigValue)
	preload(t, s.addr, "small", 1, 10)
	old, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	oldR := bufio.NewReaderSize(old, 64<<10)
	ask := func(c net.Conn, r *bufio.Reader, key, who string, within time.Duration) {
		start := time.Now()
		c.SetDeadline(start.Add(within))
		fmt.Fprintf(c, "get %s\r\n", key)
		if n, err := readValues(r); n != 1 || err != nil {
			t.Errorf("%s: %s: get %s: %d values, %v", s.name, who, key, n, err)
			return
		}
		t.Logf("%s: %s: get %s answered in %v", s.name, who, key, time.Since(start).Round(time.Millisecond))
	}
	ask(old, oldR, "small0", "before the attack", 5*time.Second)
	var gets bytes.Buffer
	for i := range 8 {
		fmt.Fprintf(&gets, "get big%d\r\n", i)
	}
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 1000 {
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(gets.Bytes()); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	ask(old, oldR, "small0", "served before the attack", 5*time.Second)
	// A cluster node answers it in 0.1-0.2 s in most runs, but 5-7.5 s
	// in about one run in three (still open: see the README).
	within := 5 * time.Second
	if s.cluster {
		within = 15 * time.Second
	}
	ask(old, oldR, "big0", "served before the attack", within)
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ask(c, bufio.NewReader(c), "small0", "new during the attack", 2*time.Second)
	// No further hold: the attack lasted that long already.
	if s.name == "shoal" {
		// On a cluster node, no peer is given up on: the values the node
		// cannot hold stay with their owner (mg A, server/connroom.go).
		// Before, the burst of forwarded gets carried ~500 MB on one peer
		// link, requests queued behind it timed out, and the node marked
		// its peer down (999 forward failures, misses, and "no owner
		// reachable" for the writes after).
		for k, v := range statsread.Dial(s.addr, "cluster") {
			if (strings.HasSuffix(k, ":forward_failures") || strings.HasSuffix(k, ":down")) && v != "0" {
				t.Errorf("%s: %s %s during the attack", s.name, k, v)
			}
		}
	}
}

// readValues reads VALUE replies up to END and counts them.
func readValues(r *bufio.Reader) (int, error) {
	n := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return n, err
		}
		if line == "END\r\n" {
			return n, nil
		}
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "VALUE" {
			return n, fmt.Errorf("unexpected %q", line)
		}
		size, _ := strconv.Atoi(f[3])
		if _, err := r.Discard(size + 2); err != nil {
			return n, err
		}
		n++
	}
}

// TestHostileClients runs every attack on a fresh node and checks its
// peak resident memory and that it still serves afterwards.
func TestHostileClients(t *testing.T) {
	t.Parallel()
	bin := shoalBinary(t)
	var (
		mu    sync.Mutex
		table []string
	)
	t.Cleanup(func() { t.Logf("case | shoal peak | memcached peak | ratio\n%s", strings.Join(table, "\n")) })
	for name, a := range attacks {
		t.Run(name, func(t *testing.T) {
			// A node each, measured alone (its own VmHWM), -parallel at a
			// time (TestMain).
			t.Parallel()
			row := runAttack(t, bin, name, a)
			mu.Lock()
			table = append(table, row)
			mu.Unlock()
		})
	}
}

// TestUnreadGets runs "1000 unread 1 MB gets" (unreadGets) on its own,
// before the other cases: its thousand connections keep both cores busy,
// which the other cases, measured beside it, should not share. Under the
// event loops, and on the goroutine driver (--conn-goroutines, which
// also serves TLS connections), whose blocked writes held 485 MB before
// its retrievals waited too (server/connblock.go); and on a node of a
// two-node cluster, about half the values on the other node, where the
// node marked its peer down, and its pipelined gets, answered together
// on goroutines, held 0.6-1.2 GB once that was mended, before they were
// bounded too (server/connroom.go).
func TestUnreadGets(t *testing.T) {
	var table string
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"1000 unread 1 MB gets", nil},
		{"1000 unread 1 MB gets, --conn-goroutines", []string{"--conn-goroutines"}},
		{"1000 unread 1 MB gets, two-node cluster", nil},
	} {
		a := attack{shoalFlags: c.flags, budgetMB: 220, run: unreadGets}
		if strings.HasSuffix(c.name, "cluster") {
			// The node's etcd runs in its process: the cluster cases'
			// budget (multiget read, cluster node).
			a.cluster, a.peer, a.budgetMB = true, true, 260
		}
		table += runAttack(t, shoalBinary(t), c.name, a) + "\n"
	}
	t.Logf("case | shoal peak | memcached peak | ratio\n%s", table)
}

// runAttack runs a on a fresh node (and, with -compare, on memcached),
// checks the node's peak resident memory against a's budget and that it
// still serves, and returns the table row.
func runAttack(t *testing.T, bin, name string, a attack) string {
	flags := append([]string{"-m", "64", "-c", "8192"}, a.flags...)
	row := "| " + name + " |"
	shFlags := append(slices.Clone(flags), a.shoalFlags...)
	var etcdAddr string
	if a.cluster {
		etcdAddr = devEtcdAddr(t)
		shFlags = append(shFlags, "--dev", "--dev-etcd", etcdAddr, "--replicas", "1")
	}
	sh := start(t, "shoal", bin, shFlags...)
	sh.cluster = a.cluster
	if a.peer {
		start(t, "shoal (second node)", bin, append(slices.Clone(flags), "--etcd", "http://"+etcdAddr)...)
		testutil.WaitUntil(t, 20*time.Second, "both nodes on the ring", func() (bool, string) {
			st := statsread.Dial(sh.addr, "cluster")
			return st["cluster_members"] == "2" && st["warm_shards"] == "0", fmt.Sprint(st["cluster_members"], " members, ", st["warm_shards"], " warming")
		})
	}
	a.run(t, sh)
	shPeak := sh.memKB(t, "VmHWM") / 1024
	row += fmt.Sprintf(" %d MB |", shPeak)
	if shPeak > a.budgetMB {
		t.Errorf("shoal peaked at %d MB resident, budget %d MB", shPeak, a.budgetMB)
	}
	healthy(t, sh)
	if *compare {
		mc := start(t, "memcached", *memcached, append(flags, "-u", "root")...)
		a.run(t, mc)
		mcPeak := mc.memKB(t, "VmHWM") / 1024
		row += fmt.Sprintf(" %d MB | %.2f× |", mcPeak, float64(shPeak)/float64(max(mcPeak, 1)))
		healthy(t, mc)
	}
	return row
}

// TestSlowClientClosed: under -o idle_timeout=2, a client sending a
// command one byte per second is closed (memcached closes it at ~4 s),
// even though it is never silent for 2 s.
func TestSlowClientClosed(t *testing.T) {
	t.Parallel() // 2 s of waiting, beside the attacks
	s := start(t, "shoal", shoalBinary(t), "-o", "idle_timeout=2")
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(closed)
	}()
	line := "get " + strings.Repeat("k", 200) + "\r\n"
	for i := 0; i < len(line); i++ {
		select {
		case <-closed:
			if i < 2 {
				t.Fatalf("closed after %d bytes", i)
			}
			healthy(t, s)
			if st := stats(t, s); st["idle_kicks"] != "1" {
				t.Errorf("idle_kicks %q, want 1", st["idle_kicks"])
			}
			return
		case <-time.After(500 * time.Millisecond):
		}
		c.Write([]byte{line[i]})
	}
	t.Fatal("a client sending one byte every 0.5 s was served to the end of its line under idle_timeout=2")
}

// stats returns the node's "stats" fields.
func stats(t testing.TB, s *server) map[string]string {
	t.Helper()
	st := statsread.Dial(s.addr, "")
	if st == nil {
		t.Fatalf("%s: no stats", s.name)
	}
	return st
}
