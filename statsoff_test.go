package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// statNamesOf returns the field names of "stats" at addr.
func statNamesOf(t *testing.T, addr string) []string {
	t.Helper()
	var names []string
	for _, l := range strings.Split(exchange(t, addr, "stats\r\n"), "\r\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "STAT" {
			names = append(names, f[1])
		}
	}
	return names
}

// omitted returns what base has and other lacks.
func omitted(base, other []string) []string {
	var out []string
	for _, n := range base {
		if !slices.Contains(other, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestStatsOffMatchesMemcached: memcached's -o no_lru_crawler,
// no_lru_maintainer, no_slab_reassign, no_maxconns_fast and no_modern
// take the counters of what they switch off out of stats (memcached's
// t/stats.t counts the fields); shoal leaves out the same ones.
func TestStatsOffMatchesMemcached(t *testing.T) {
	t.Parallel()
	mc, err := exec.LookPath("memcached")
	if err != nil {
		t.Skip("memcached not installed")
	}
	startMC := func(t *testing.T, opts ...string) string {
		addr := testutil.FreeAddr(t)
		_, port, _ := strings.Cut(addr, ":")
		cmd := exec.Command(mc, append([]string{"-u", "nobody", "-l", "127.0.0.1", "-U", "0", "-p", port}, opts...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		testutil.WaitUntil(t, 5*time.Second, "memcached to serve", func() (bool, string) {
			_, err := testutil.TextLines(addr, "version\r\n", 1)
			return err == nil, ""
		})
		return addr
	}
	shoalBase := statNamesOf(t, startNode(t))
	mcBase := statNamesOf(t, startMC(t))
	for _, opt := range []string{"no_lru_crawler", "no_lru_maintainer", "no_slab_reassign", "no_maxconns_fast", "no_modern", "no_modern,lru_crawler"} {
		t.Run(opt, func(t *testing.T) {
			t.Parallel()
			want := omitted(mcBase, statNamesOf(t, startMC(t, "-o", opt)))
			got := omitted(shoalBase, statNamesOf(t, startNode(t, "-o", opt)))
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("-o %s: shoal leaves out %v, memcached %v", opt, got, want)
			}
		})
	}
}

// TestNoCASStandaloneOnly: -C is refused in a cluster, whose copies are
// ordered by CAS, and shown in stats settings standalone.
func TestNoCASStandaloneOnly(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"-p", "0", "-C", "--etcd", "http://127.0.0.1:1"}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "-C cannot be used in a cluster") {
		t.Fatalf("-C with --etcd: %v", err)
	}
	if out := exchange(t, startNode(t, "-C"), "stats settings\r\n"); !strings.Contains(out, "STAT cas_enabled no\r\n") {
		t.Fatalf("stats settings with -C:\n%s", out)
	}
}

// TestPortFile: -p -1 listens on a free port, and $MEMCACHED_PORT_FILENAME
// names a file that gets "TCP INET: <port>" per listener, as memcached's
// (its t/issue_67.t and test harnesses read it).
func TestPortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ports")
	t.Setenv("MEMCACHED_PORT_FILENAME", path)
	addr := startNode(t, "-p", "-1")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	if got, want := string(b), "TCP INET: "+port+"\n"; got != want {
		t.Fatalf("port file %q, want %q", got, want)
	}
}
