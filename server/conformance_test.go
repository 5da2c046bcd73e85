package server

// Differential conformance suite: the same bytes go to memcached and to
// shoal, and both replies must equal the golden reply recorded from
// memcached 1.6.18. Goldens live in testdata so shoal is checked on machines
// without memcached; when memcached is installed it is checked too, so a
// stale golden shows up as a memcached failure.
//
//	go test ./server -run TestConformance            # both targets
//	go test ./server -run TestConformance/shoal/meta_get
//	go test ./server -run TestConformance -update    # re-record from memcached
//
// # Case files: testdata/conformance/NAME.txt
//
// A file holds several small cases about one concept. Each case starts with
// a header line "=== case name" and runs on a fresh server and connection.
// Lines before the first header are comments and file-wide directives.
//
// Every other line is request text: its bytes are sent as written minus the
// file's own newline, after unescaping \r \n \t \\ and \xHH. So a normal
// command is written "get k\r\n", a bare-LF command "get k\n", and a line
// may hold several commands or none of a line ending. Blank lines are
// ignored; lines may not end in a space or tab (write \x20). The text
// <casN> is replaced by the real CAS value that <casN> stands for in the
// reply so far (see normalisation), which needs a "# sync:" before it.
//
// Lines starting with "#" are comments, except these directives:
//
//	# args: -I 1k          server flags (file-wide before the first case,
//	                       else for this case only); both servers get them
//	# split:                end the current write; the rest goes in a new one
//	# sync:                 end the write, send "mn\r\n" and wait for its MN,
//	                       so the reply so far (and its CAS values) is known
//	# sleep: 1.5            end the write and sleep this many seconds (≤ 2.5)
//	# repeat: 2000 \x20k%d  append the escaped template this many times, %d
//	                       replaced by 0, 1, ...
//
// Only these exact words followed by a colon are directives, so a comment
// must not start with one of them and a colon.
//
// # Reply capture
//
// After the case, the harness sends the sentinel "mn\r\n" and reads until
// the reply ends in "MN\r\n" and holds one MN per "mn" line of the case and
// per sync, plus the sentinel's; the sentinel's MN is dropped. If the server
// closes the connection first (quit, over-long line) everything read until
// EOF is the reply, followed by the marker line "# closed". A read deadline
// is only a safety net.
//
// # Golden files: testdata/conformance/NAME.golden
//
// The same "=== case name" headers, each followed by the reply split after
// every \n and escaped like requests (a line starting with "#" or "=" gets
// its first byte as \xHH). Before comparison, CAS values are normalised: the
// fifth token of a "VALUE" line and every c<digits> flag of a meta reply
// become <cas1>, <cas2>, ... by order of first appearance, so equal CAS
// values stay equal and shoal need not count like memcached does.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"shoal/internal/testutil"
	"strings"
	"sync"
	"testing"
	"time"
)

var updateConformance = flag.Bool("update", false, "rewrite testdata/conformance/*.golden from memcached")

const (
	conformanceDir = "../testdata/conformance"
	// replyTimeout bounds the wait for a reply; a correct server answers in
	// milliseconds, so hitting it means a case or a server is wrong.
	replyTimeout = 3 * time.Second
	maxSleep     = 2500 * time.Millisecond
	closedMarker = "# closed"
)

func TestConformance(t *testing.T) {
	t.Parallel() // waits mostly (TTLs, delayed flushes): after the serial tests, beside the others
	files, err := filepath.Glob(filepath.Join(conformanceDir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files in %s: %v", conformanceDir, err)
	}
	targets := []struct {
		name  string
		start func(testing.TB, ...string) string
	}{
		{"memcached", startMemcached},
		{"shoal", startShoal},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel() // the two targets' files side by side: they wait, mostly
			if *updateConformance && tg.name != "memcached" {
				t.Skip("-update records from memcached only")
			}
			if tg.name == "memcached" && !*updateConformance && !testutil.LongOn() {
				// The golden files are memcached's replies, recorded: a
				// quick run compares shoal with them; the long one (as CI)
				// also checks that memcached still gives them (~10 CPU-s:
				// a memcached process per case).
				t.Skip("replaying the golden files to memcached is a long scenario: " + testutil.LongEnv + "=1")
			}
			if _, err := exec.LookPath("memcached"); err != nil && tg.name == "memcached" {
				if *updateConformance {
					t.Fatal("-update needs memcached on PATH")
				}
				t.Skip("memcached not on PATH")
			}
			for _, file := range files {
				name := strings.TrimSuffix(filepath.Base(file), ".txt")
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					runConformanceFile(t, file, tg.start)
				})
			}
		})
	}
}

func runConformanceFile(t *testing.T, file string, start func(testing.TB, ...string) string) {
	cases, err := parseCases(file)
	if err != nil {
		t.Fatal(err)
	}
	goldenPath := strings.TrimSuffix(file, ".txt") + ".golden"
	golden := map[string][]string{}
	if !*updateConformance {
		if golden, err = parseGolden(goldenPath); err != nil {
			t.Fatal(err)
		}
	}
	var recorded bytes.Buffer
	recorded.WriteString("# Recorded from memcached by TestConformance -update; do not edit.\n")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runConformanceCase(t, file, c, start)
			if *updateConformance {
				fmt.Fprintf(&recorded, "=== %s\n", c.name)
				for _, l := range got {
					recorded.WriteString(l + "\n")
				}
				return
			}
			want, ok := golden[c.name]
			if !ok {
				t.Fatalf("%s:%d: no golden reply; run with -update", file, c.line)
			}
			if diffLines(want, got) != "" {
				// TTLs and ages in replies (t, l flags) are whole seconds
				// of a ticking clock, so a tick mid-case can change one;
				// a real difference survives a second run.
				t.Logf("%s:%d: reply differs, retrying once", file, c.line)
				got = runConformanceCase(t, file, c, start)
			}
			if diff := diffLines(want, got); diff != "" {
				t.Errorf("%s:%d: reply differs from %s\n%s", file, c.line, filepath.Base(goldenPath), diff)
			}
		})
	}
	if *updateConformance && !t.Failed() {
		if err := os.WriteFile(goldenPath, recorded.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runConformanceCase runs c on a fresh server and returns its reply as
// escaped golden lines.
func runConformanceCase(t *testing.T, file string, c *conformanceCase, start func(testing.TB, ...string) string) []string {
	t.Helper()
	addr := start(t, c.args...)
	reply, closed, err := c.run(addr)
	got := escapeReply(normaliseCAS(reply).text, closed)
	if err != nil {
		t.Fatalf("%s:%d: %v\nreply so far:\n%s", file, c.line, err, strings.Join(got, "\n"))
	}
	return got
}

// conformanceCase is one "=== name" block of a case file.
var sentinel = []byte("mn\r\n")

// run sends the case to addr and returns its reply, whether the server
// closed the connection, and an error if the harness could not finish.
func (c *conformanceCase) run(addr string) ([]byte, bool, error) {
	conn, err := net.DialTimeout("tcp", addr, replyTimeout)
	if err != nil {
		return nil, false, err
	}
	r := startReader(conn)
	defer r.stop()

	// wantMN counts the MN replies due so far: one per "mn" line of the
	// case and one per sentinel.
	wantMN := 0
	var writeErr error
	for _, s := range c.steps {
		data, err := substituteCAS(s.data, normaliseCAS(r.snapshot()).tokens)
		if err != nil {
			return r.snapshot(), false, err
		}
		wantMN += countMN(data)
		if s.sync {
			data = append(data, sentinel...)
			wantMN++
		}
		if writeErr == nil && len(data) > 0 {
			_, writeErr = conn.Write(data)
		}
		if s.sync {
			if err := r.waitMN(wantMN); err != nil {
				if errors.Is(err, errClosed) {
					return r.snapshot(), true, nil
				}
				return r.snapshot(), false, err
			}
		}
		time.Sleep(s.sleep) // only expiry cases sleep: time must pass
	}
	if writeErr == nil {
		_, writeErr = conn.Write(sentinel)
	}
	_ = writeErr // a server that closed shows up as EOF below
	if err := r.waitMN(wantMN + 1); err != nil {
		if errors.Is(err, errClosed) {
			return r.snapshot(), true, nil
		}
		return r.snapshot(), false, err
	}
	reply := r.snapshot()
	return reply[:len(reply)-len("MN\r\n")], false, nil
}

// countMN counts "mn" command lines in data.
func countMN(data []byte) int {
	n := 0
	for _, l := range bytes.Split(data, []byte("\n")) {
		// "mn" with any tokens after it is still a no-op answered MN.
		if rest, ok := bytes.CutPrefix(l, []byte("mn")); ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\r') {
			n++
		}
	}
	return n
}

var errClosed = errors.New("server closed the connection")

// reader collects everything the server sends, so the server never blocks
// on a full socket while the harness is still writing.
type reader struct {
	conn   net.Conn
	signal chan struct{} // poked after every read
	done   chan struct{} // closed when the read loop exits

	mu  sync.Mutex // guards buf and err
	buf []byte
	err error
}

func startReader(conn net.Conn) *reader {
	r := &reader{conn: conn, signal: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		b := make([]byte, 64<<10)
		for {
			n, err := conn.Read(b)
			r.mu.Lock()
			r.buf = append(r.buf, b[:n]...)
			r.err = err
			r.mu.Unlock()
			select {
			case r.signal <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

func (r *reader) snapshot() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.buf...)
}

// waitMN waits until the reply ends in MN and holds at least n of them.
func (r *reader) waitMN(n int) error {
	timeout := time.NewTimer(replyTimeout)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		buf, err := r.buf, r.err
		r.mu.Unlock()
		if bytes.Count(buf, []byte("MN\r\n")) >= n && bytes.HasSuffix(buf, []byte("MN\r\n")) {
			return nil
		}
		if err != nil {
			return errClosed
		}
		select {
		case <-r.signal:
		case <-timeout.C:
			return fmt.Errorf("no complete reply after %v", replyTimeout)
		}
	}
}

func (r *reader) stop() {
	r.conn.Close()
	<-r.done
}

// normalised is a reply with CAS values replaced by <casN> tokens.
