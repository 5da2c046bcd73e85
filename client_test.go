package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// TestGomemcache drives a node with the reference Go client end to end.
func TestGomemcache(t *testing.T) {
	t.Parallel()
	mc := memcache.New(startNode(t))
	mc.Timeout = 5 * time.Second // gomemcache's 500 ms failed a set on a loaded machine
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(mc.Ping())
	must(mc.Set(&memcache.Item{Key: "k", Value: []byte("v1"), Flags: 7}))
	it, err := mc.Get("k")
	must(err)
	if string(it.Value) != "v1" || it.Flags != 7 {
		t.Fatalf("get = %q flags %d", it.Value, it.Flags)
	}
	if _, err := mc.Get("absent"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("miss: %v", err)
	}
	if err := mc.Add(&memcache.Item{Key: "k", Value: []byte("x")}); !errors.Is(err, memcache.ErrNotStored) {
		t.Fatalf("add on existing: %v", err)
	}
	must(mc.Append(&memcache.Item{Key: "k", Value: []byte("+a")}))
	must(mc.Prepend(&memcache.Item{Key: "k", Value: []byte("p+")}))
	it, err = mc.Get("k")
	must(err)
	if string(it.Value) != "p+v1+a" {
		t.Fatalf("after append/prepend: %q", it.Value)
	}
	// CAS: a second writer between gets and cas makes the cas fail.
	it.Value = []byte("cas1")
	must(mc.CompareAndSwap(it))
	stale := *it
	if err := mc.CompareAndSwap(&stale); !errors.Is(err, memcache.ErrCASConflict) {
		t.Fatalf("stale cas: %v", err)
	}
	must(mc.Set(&memcache.Item{Key: "n", Value: []byte("10")}))
	if v, err := mc.Increment("n", 5); err != nil || v != 15 {
		t.Fatalf("incr = %d, %v", v, err)
	}
	if v, err := mc.Decrement("n", 100); err != nil || v != 0 {
		t.Fatalf("decr below zero = %d, %v", v, err)
	}
	must(mc.Touch("n", 100))
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = "multi" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('0'+i%10)) + itoa(i)
		must(mc.Set(&memcache.Item{Key: keys[i], Value: []byte(keys[i])}))
	}
	got, err := mc.GetMulti(keys)
	must(err)
	if len(got) != len(keys) {
		t.Fatalf("GetMulti returned %d of %d", len(got), len(keys))
	}
	for _, k := range keys {
		if string(got[k].Value) != k {
			t.Fatalf("GetMulti[%s] = %q", k, got[k].Value)
		}
	}
	must(mc.Delete("k"))
	if err := mc.Delete("k"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("second delete: %v", err)
	}
	big := make([]byte, 2<<20)
	if err := mc.Set(&memcache.Item{Key: "big", Value: big}); err == nil {
		t.Fatal("2 MiB value stored under the 1 MiB limit")
	}
	must(mc.Ping()) // the connection pool survived the refused value
	must(mc.FlushAll())
	if _, err := mc.Get("n"); !errors.Is(err, memcache.ErrCacheMiss) {
		t.Fatalf("after flush_all: %v", err)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestDebianClients runs the command-line and library clients a memcached
// user already has (libmemcached-tools, Python's pymemcache, Perl's
// Cache::Memcached) against a node; each skips when not installed.
func TestDebianClients(t *testing.T) {
	t.Parallel()
	addr := startNode(t)
	host, port, _ := strings.Cut(addr, ":")
	cases := map[string]struct {
		bin    string
		script func() *exec.Cmd
		want   string
	}{
		"libmemcached memccp/memccat": {"memccat", func() *exec.Cmd {
			servers := "--servers=" + addr
			return exec.Command("sh", "-c", `set -e; d=$(mktemp -d); printf 'hello from memccp' > "$d/greeting";
				cd "$d" && memccp `+servers+` greeting && memccat `+servers+` greeting && memcrm `+servers+` greeting;
				memccat `+servers+` greeting 2>/dev/null && echo still-there || echo removed`)
		}, "hello from memccp\nremoved"},
		"python pymemcache": {"python3", func() *exec.Cmd {
			return exec.Command("python3", "-c", `
from pymemcache.client.base import Client
c = Client(("`+host+`", `+port+`))
c.set("py", "snake", expire=100)
print(c.get("py").decode())
print(c.incr("ctr", 1))
c.set("ctr", "41")
print(c.incr("ctr", 1))
r = c.gets("py")
print(c.cas("py", "newer", r[1]))
print(c.get_many(["py", "nope"]))
print(c.stats()[b"curr_items"])
`)
		}, "snake\nNone\n42\nTrue\n{'py': b'newer'}\n2"},
		"perl Cache::Memcached": {"perl", func() *exec.Cmd {
			return exec.Command("perl", "-MCache::Memcached", "-e", `
my $m = Cache::Memcached->new({servers => ["`+addr+`"]});
$m->set("pl", "camel") or die "set";
print $m->get("pl"), "\n";
$m->set("n", 5); print $m->incr("n", 3), "\n";
my $h = $m->get_multi("pl", "n", "none"); print join(",", map {"$_=$h->{$_}"} sort keys %$h), "\n";
$m->delete("pl"); print defined($m->get("pl")) ? "present\n" : "gone\n";
`)
		}, "camel\n8\nn=8,pl=camel\ngone"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath(tc.bin); err != nil {
				t.Skipf("%s not installed", tc.bin)
			}
			cmd := tc.script()
			out, err := cmd.CombinedOutput()
			if err != nil && strings.Contains(string(out), "Can't locate") || strings.Contains(string(out), "No module named") {
				t.Skipf("client library not installed: %s", out)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Fatalf("output:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
