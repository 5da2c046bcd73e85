package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/testutil"
	"shoal/store"
)

// startWatched starts shoal with its store's evictions going to the
// server's Watch, as main wires a node.
func startWatched(t testing.TB, scfg store.Config, cfg Config) (*Server, string) {
	t.Helper()
	if os.Getenv(eventLoopEnv) == "1" {
		cfg.EventLoop = true
	}
	if cfg.Watch == nil {
		cfg.Watch = new(Watch)
	}
	scfg.Evicted = cfg.Watch.Evicted
	st, err := store.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return serve(t, cfg, Local{st})
}

// watchReplies are what memcached 1.6.18 answers (checked against it in
// TestWatchReplies); "" means no reply. After an OK the connection only
// watches: the version sent after it is not answered.
var watchReplies = []struct {
	name, req, want string
}{
	{"default stream", "watch\r\n", "OK\r\n"},
	{"every stream", "watch fetchers mutations evictions\r\n", "OK\r\n"},
	{"silent streams", "watch rawcmds sysevents proxyreqs proxyevents proxyuser\r\n", "OK\r\n"},
	{"extra spaces", "watch  fetchers\r\n", "OK\r\n"},
	{"unknown stream", "watch bogus\r\n", "ERROR\r\nVERSION 1.6.18\r\n"},
	{"one unknown", "watch fetchers bogus\r\n", "ERROR\r\nVERSION 1.6.18\r\n"},
	{"deletions is 1.6.20's", "watch deletions\r\n", "ERROR\r\nVERSION 1.6.18\r\n"},
	{"noreply", "watch noreply\r\n", "VERSION 1.6.18\r\n"},
	{"stream noreply", "watch fetchers noreply\r\n", "VERSION 1.6.18\r\n"},
	{"upper case", "WATCH\r\n", "ERROR\r\nVERSION 1.6.18\r\n"},
	{"pipelined", "version\r\nwatch\r\n", "VERSION 1.6.18\r\nERROR cannot pipeline other commands before watch\r\nVERSION 1.6.18\r\n"},
	{"commands after", "watch\r\nget a\r\n", "OK\r\n"},
}

func TestWatchReplies(t *testing.T) {
	// The cases one at a time (a watcher on their shared server would see
	// the others' commands), 150 ms of fixed waits each: beside the other
	// tests, not before them.
	t.Parallel()
	addrs := map[string]string{"shoal": startShoal(t)}
	if testing.Short() {
		t.Log("short: shoal only")
	} else if _, err := exec.LookPath("memcached"); err == nil {
		// Its LRU crawler reports its runs on sysevents, which "silent
		// streams" expects quiet (it failed so, at random).
		addrs["memcached"] = startMemcached(t, "-o", "no_lru_crawler")
	}
	for name, addr := range addrs {
		// The two servers side by side, each one's cases in turn.
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range watchReplies {
				t.Run(tc.name, func(t *testing.T) {
					c := dial(t, addr)
					io.WriteString(c, tc.req)
					// A watcher answers nothing more: wait for the version's
					// reply only as long as it takes to come.
					time.Sleep(50 * time.Millisecond)
					io.WriteString(c, "version\r\n")
					// The expected reply is waited for (a loaded machine once
					// missed a fixed 300 ms window); anything more, briefly.
					got := readAtLeast(c, len(tc.want), 10*time.Second) + readFor(c, 100*time.Millisecond)
					if got != tc.want {
						t.Fatalf("%q: got %q, want %q", tc.req, got, tc.want)
					}
				})
			}
		})
	}
}

// readAtLeast reads from c until it has n bytes, it closes, or d passes.
func readAtLeast(c net.Conn, n int, d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 0, n)
	buf := make([]byte, 4096)
	for len(b) < n {
		k, err := c.Read(buf[:min(len(buf), n-len(b))])
		b = append(b, buf[:k]...)
		if err != nil {
			break
		}
	}
	return string(b)
}

// readFor reads what c sends within d.
func readFor(c net.Conn, d time.Duration) string {
	c.SetReadDeadline(time.Now().Add(d))
	b, _ := io.ReadAll(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return string(b)
}

// watchScenario drives every command that logs a fetch or a mutation.
// Each line runs alone (the next waits for its reply), so that the order
// of events is the order of the lines.
var watchScenario = []string{
	"set a 1 0 2\r\nhi",
	"set n 0 0 1\r\n5",
	"get a n zz",
	"gets a",
	"gat 0 a",
	"gat 0 zz",
	"touch a 100",
	"touch zz 1",
	"add a 0 0 1\r\nx",
	"add q 0 0 1\r\nx",
	"append a 0 0 1\r\nx",
	"prepend a 0 0 1\r\ny",
	"prepend zz 0 0 1\r\ny",
	"replace zz 0 0 1\r\nx",
	"replace q 0 0 2\r\nxy",
	"cas zz 0 0 1 5\r\nx",
	"cas a 0 10 1 999\r\nz",
	"cas q 0 0 1 0\r\nx",
	"set v 0 0 1 noreply\r\nx",
	"incr n 2",
	"decr n 10",
	"incr a 1",
	"incr zz 1",
	"delete zz",
	"delete v",
	"mg n s v t f",
	"mg zz s",
	"mg zz N30 s",
	"mg zz s",
	"ms m 2 MA\r\nhi",
	"ms m 2\r\nhi",
	"ms m 2 MS\r\nhi",
	"ms m 2 MR\r\nhi",
	"ms m 2 ME\r\nhi",
	"ms m2 2 ME\r\nhi",
	"ms c 1 C999\r\nx",
	"ms bm 1 T50\r\nx",
	"ma n",
	"ma zz2",
	"ma zz2 N0 J13",
	"me a",
	"md nope",
	"md a q",
	"set k%,x 0 0 1\r\nx",
	"get k%,x",
	"set a 0 0 1048577",
}

// TestWatchDifferential runs watchScenario on shoal and on memcached and
// compares what a watcher of fetchers, mutations and connevents sees, in
// gid order, with the values that are each server's own (ts, gid, cfd,
// clsid, ttl, rport) blanked.
func TestWatchDifferential(t *testing.T) {
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("memcached not on PATH")
	}
	mc := watchRun(t, startMemcached(t))
	_, addr := startWatched(t, store.Config{}, Config{})
	sh := watchRun(t, addr)
	for i := 0; i < max(len(mc), len(sh)); i++ {
		var m, s string
		if i < len(mc) {
			m = mc[i]
		}
		if i < len(sh) {
			s = sh[i]
		}
		if m != s {
			t.Fatalf("line %d differs:\nmemcached: %s\nshoal:     %s\nmemcached's lines:\n%s", i, m, s, strings.Join(mc, "\n"))
		}
	}
}

var (
	gidField  = regexp.MustCompile(`gid=(\d+)`)
	ownFields = regexp.MustCompile(`\b(ts|cfd|clsid|ttl|rport)=[-\d.]+`)
)

// watchRun attaches a watcher to addr, runs watchScenario, and returns its
// lines sorted by gid and normalised.
func watchRun(t *testing.T, addr string) []string {
	t.Helper()
	w := dial(t, addr)
	io.WriteString(w, "watch fetchers mutations connevents\r\n")
	wr := bufio.NewReader(w)
	if l, err := wr.ReadString('\n'); l != "OK\r\n" {
		t.Fatalf("watch: %q %v", l, err)
	}
	c := dial(t, addr)
	cr := bufio.NewReader(c)
	for _, cmd := range watchScenario {
		if strings.HasSuffix(cmd, " 1048577") {
			// Too large: the value is swallowed as it arrives.
			io.WriteString(c, cmd+"\r\n"+strings.Repeat("x", 1048577)+"\r\n")
		} else {
			io.WriteString(c, cmd+"\r\n")
		}
		// mn answers once the command before it has: no event of its own.
		io.WriteString(c, "mn\r\n")
		for {
			l, err := cr.ReadString('\n')
			if err != nil {
				t.Fatalf("%q: %v", cmd, err)
			}
			if l == "MN\r\n" {
				break
			}
		}
	}
	// A connection opened and closed, then a marker for the end.
	c2 := dial(t, addr)
	served(t, c2, "second connection")
	c2.Close()
	var lines []string
	readUntil := func(sub string) {
		for {
			l, err := wr.ReadString('\n')
			if err != nil {
				t.Fatalf("watcher: %v after %q", err, lines)
			}
			lines = append(lines, strings.TrimSuffix(l, "\n"))
			if strings.Contains(l, sub) {
				return
			}
		}
	}
	mine := " rport=" + strconv.Itoa(c2.LocalAddr().(*net.TCPAddr).Port) + " "
	readUntil("type=conn_close rip=127.0.0.1" + mine)
	io.WriteString(c, "get end\r\n")
	readUntil("key=end ")
	// Only c2's connection events: memcached may still log the close of
	// the connection that found it listening.
	kept := lines[:0]
	for _, l := range lines {
		if !strings.Contains(l, " type=conn_") || strings.Contains(l, mine) {
			kept = append(kept, l)
		}
	}
	lines = kept
	sort.SliceStable(lines, func(i, j int) bool { return gid(lines[i]) < gid(lines[j]) })
	for i, l := range lines {
		if !strings.HasPrefix(l, "ts=") {
			t.Fatalf("line without ts: %q", l)
		}
		lines[i] = ownFields.ReplaceAllString(gidField.ReplaceAllString(l, "gid="), "$1=")
	}
	return lines
}

func gid(l string) int {
	m := gidField.FindStringSubmatch(l)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestWatchLineFormat checks the fields memcached prints and the values
// shoal fills in where they are its own.
func TestWatchLineFormat(t *testing.T) {
	_, addr := startWatched(t, store.Config{}, Config{})
	w := dial(t, addr)
	io.WriteString(w, "watch fetchers mutations\r\n")
	wr := bufio.NewReader(w)
	wr.ReadString('\n')
	c := dial(t, addr)
	io.WriteString(c, "set k 0 100 3\r\nabc\r\n")
	bufio.NewReader(c).ReadString('\n')
	get := regexp.MustCompile(`^ts=\d+\.\d{1,6} gid=\d+ type=item_get key=k status=not_found clsid=0 cfd=\d+ size=0\n$`)
	set := regexp.MustCompile(`^ts=\d+\.\d{1,6} gid=\d+ type=item_store key=k status=stored cmd=set ttl=(99|100) clsid=([1-9]\d*) cfd=\d+ size=3\n$`)
	l1, _ := wr.ReadString('\n')
	l2, _ := wr.ReadString('\n')
	if !get.MatchString(l1) || !set.MatchString(l2) {
		t.Fatalf("lines:\n%q\n%q", l1, l2)
	}
	if gid(l2) != gid(l1)+1 {
		t.Fatalf("gids %d then %d", gid(l1), gid(l2))
	}
}

// TestWatchEvictions: the store's evictions reach a watcher of them.
func TestWatchEvictions(t *testing.T) {
	_, addr := startWatched(t, store.Config{MemoryLimit: 2 << 20}, Config{})
	w := dial(t, addr)
	io.WriteString(w, "watch evictions\r\n")
	wr := bufio.NewReader(w)
	wr.ReadString('\n')
	c := dial(t, addr)
	cw := bufio.NewWriter(c)
	val := strings.Repeat("v", 1000)
	for i := range 5000 {
		fmt.Fprintf(cw, "set key%d 0 0 %d noreply\r\n%s\r\n", i, len(val), val)
	}
	cw.Flush()
	l, err := wr.ReadString('\n')
	re := regexp.MustCompile(`^ts=\d+\.\d+ gid=\d+ type=eviction key=key\d+ fetch=no ttl=-1 la=\d+ clsid=[1-9]\d* size=1000\n$`)
	if err != nil || !re.MatchString(l) {
		t.Fatalf("eviction line %q, %v", l, err)
	}
}

// TestWatchBounded: a watcher that never reads holds its buffer and its
// socket's, no more; what does not fit is dropped, counted, and announced
// by "skipped=N" when the watcher reads again. The request path never
// waits for it.
func TestWatchBounded(t *testing.T) {
	srv, addr := startWatched(t, store.Config{}, Config{})
	w, wr := dialWatch(t, addr, "fetchers")
	c := dial(t, addr)
	io.WriteString(c, "set k 0 0 1\r\nx\r\n")
	cr := bufio.NewReader(c)
	cr.ReadString('\n')
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// Each get logs a line of ~90 bytes: 200,000 are 18 MB, far more than
	// the 256 KB buffer and the sockets hold.
	req := []byte(strings.Repeat("get k\r\n", 1000))
	start := time.Now()
	for range 200 {
		c.Write(req)
		for range 1000 {
			cr.ReadString('\n')
			cr.ReadString('\n')
			cr.ReadString('\n')
		}
	}
	took := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	st := srv.Stats().Watch
	t.Logf("200000 gets in %v; watch %+v; heap %d -> %d KB", took, st, before.HeapInuse>>10, after.HeapInuse>>10)
	if st.Skipped == 0 || st.Sent+st.Skipped != 200001 || st.Watchers != 1 { // and the set's lookup
		t.Fatalf("stats %+v", st)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 8<<20 {
		t.Fatalf("heap grew %d KB with a watcher that does not read", grown>>10)
	}
	_, vals := statNames(t, addr, "stats")
	if vals["log_watchers"] != "1" || vals["log_watcher_skipped"] != strconv.FormatInt(st.Skipped, 10) || vals["log_watcher_sent"] != strconv.FormatInt(st.Sent, 10) {
		t.Fatalf("stats: watchers %s skipped %s sent %s, want 1 %d %d", vals["log_watchers"], vals["log_watcher_skipped"], vals["log_watcher_sent"], st.Skipped, st.Sent)
	}
	// Reading again: the lines that fit, then, before the next line, the
	// count of those that did not.
	// The skipped lines are announced when a line fits again, which may
	// have happened while the gets ran: the counts add up.
	var lines, announced int64
	for lines < st.Sent {
		l, err := wr.ReadString('\n')
		switch {
		case err != nil:
			t.Fatalf("after %d lines: %v", lines, err)
		case strings.HasPrefix(l, "skipped="):
			n, _ := strconv.ParseInt(strings.TrimSpace(l[len("skipped="):]), 10, 64)
			announced += n
		case strings.Contains(l, " type=item_get key=k status="):
			lines++
		default:
			t.Fatalf("line %q", l)
		}
	}
	io.WriteString(c, "get k\r\n")
	if rest := st.Skipped - announced; rest > 0 {
		want := "skipped=" + strconv.FormatInt(rest, 10) + "\n"
		if l, err := wr.ReadString('\n'); l != want {
			t.Fatalf("%q %v, want %q", l, err, want)
		}
	}
	if l, err := wr.ReadString('\n'); err != nil || !strings.Contains(l, " type=item_get key=k status=found ") {
		t.Fatalf("after skipped: %q, %v", l, err)
	}
	// The watcher goes: its buffer with it.
	w.Close()
	testutil.WaitFor(t, 5*time.Second, "log_watchers 0", func() bool { return srv.Stats().Watch.Watchers == 0 })
}

// TestWatchTooMany: memcached's limit of 20 watchers.
func TestWatchTooMany(t *testing.T) {
	srv, addr := startWatched(t, store.Config{}, Config{})
	for i := range watcherLimit {
		w := dial(t, addr)
		io.WriteString(w, "watch\r\n")
		if l, _ := bufio.NewReader(w).ReadString('\n'); l != "OK\r\n" {
			t.Fatalf("watcher %d: %q", i, l)
		}
	}
	w := dial(t, addr)
	io.WriteString(w, "watch\r\n")
	if l, _ := bufio.NewReader(w).ReadString('\n'); l != "WATCHER_TOO_MANY log watcher limit reached\r\n" {
		t.Fatalf("21st watcher: %q", l)
	}
	if n := srv.Stats().Watch.Watchers; n != watcherLimit {
		t.Fatalf("%d watchers", n)
	}
}

// TestWatchDisabled: memcached -W.
func TestWatchDisabled(t *testing.T) {
	_, addr := startWatched(t, store.Config{}, Config{DisableWatch: true})
	c := dial(t, addr)
	io.WriteString(c, "watch\r\n")
	if l, _ := bufio.NewReader(c).ReadString('\n'); l != "CLIENT_ERROR watch commands not allowed\r\n" {
		t.Fatalf("%q", l)
	}
}

// TestWatchShutdown: Shutdown ends the watchers, which have nothing to
// write, at once.
func TestWatchShutdown(t *testing.T) {
	srv, addr := startWatched(t, store.Config{}, Config{})
	w := dial(t, addr)
	io.WriteString(w, "watch\r\n")
	bufio.NewReader(w).ReadString('\n')
	testutil.WaitFor(t, 5*time.Second, "a watcher", func() bool { return srv.Stats().Watch.Watchers == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWatchCloseReason: as memcached 1.6.18 (its t/watcher.t; memcached.c
// sets NORMAL_CLOSE only at the end of the stream and on quit), a client
// that hangs up or quits closes with reason=normal, one that sends an HTTP
// request or an overlong line with reason=error.
func TestWatchCloseReason(t *testing.T) {
	_, addr := startWatched(t, store.Config{}, Config{})
	w, wr := dialWatch(t, addr, "connevents")
	for _, tc := range []struct{ name, send, reason string }{
		{"hang up", "", "normal"},
		{"quit", "quit\r\n", "normal"},
		{"http", "GET / HTTP/1.1\r\n", "error"},
		{"line too long", strings.Repeat("x", 8192), "error"},
	} {
		c := dial(t, addr)
		mine := " rport=" + strconv.Itoa(c.LocalAddr().(*net.TCPAddr).Port) + " "
		if tc.send != "" {
			io.WriteString(c, tc.send)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // the server closes
		}
		c.Close()
		for {
			w.SetReadDeadline(time.Now().Add(5 * time.Second))
			l, err := wr.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: watcher: %v", tc.name, err)
			}
			if strings.Contains(l, "type=conn_close") && strings.Contains(l, mine) {
				if !strings.Contains(l, " reason="+tc.reason+" ") && !strings.HasSuffix(l, " reason="+tc.reason+"\n") {
					t.Errorf("%s: %q, want reason=%s", tc.name, l, tc.reason)
				}
				break
			}
		}
	}
}

// dialWatch opens a connection that watches streams, past memcached's OK.
func dialWatch(t *testing.T, addr, streams string) (net.Conn, *bufio.Reader) {
	t.Helper()
	w := dial(t, addr)
	io.WriteString(w, "watch "+streams+"\r\n")
	wr := bufio.NewReader(w)
	if l, _ := wr.ReadString('\n'); l != "OK\r\n" {
		t.Fatalf("watch %s: %q", streams, l)
	}
	return w, wr
}
