package main

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
)

// memcachedTool is Debian's memcached-tool (package memcached).
const memcachedTool = "/usr/share/memcached/scripts/memcached-tool"

// TestMemcachedTool runs Debian's memcached-tool against a node: its six
// modes answer (dump and keys read lru_crawler metadump to its END), and
// dump replays as the adds that restore every item.
func TestMemcachedTool(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(memcachedTool); err != nil {
		t.Skip("memcached-tool not installed (Debian package memcached)")
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl not installed")
	}
	addr := startNode(t)
	mc := memcache.New(addr)
	items := map[string]string{"plain": "one", "with%percent": "two", "exp:ires": "three"}
	for k, v := range items {
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte(v), Flags: 7, Expiration: 3600}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(mode string) string {
		t.Helper()
		out, err := exec.Command("perl", memcachedTool, addr, mode).Output()
		if err != nil {
			t.Fatalf("memcached-tool %s: %v", mode, err)
		}
		return string(out)
	}
	for _, mode := range []string{"display", "stats", "settings", "sizes"} {
		if out := run(mode); len(out) == 0 {
			t.Errorf("memcached-tool %s printed nothing", mode)
		}
	}
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(run("keys")), "\n") {
		f := strings.Fields(line)
		if len(f) != 7 || !strings.HasPrefix(f[0], "key=") || !strings.HasPrefix(f[1], "exp=") {
			t.Fatalf("keys: line %q", line)
		}
		keys = append(keys, f[0])
	}
	sort.Strings(keys)
	if want := []string{"key=exp%3Aires", "key=plain", "key=with%25percent"}; strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Errorf("keys: %v, want %v", keys, want)
	}
	dump := run("dump")
	for k, v := range items {
		if !strings.Contains(dump, "add "+k+" 7 ") || !strings.Contains(dump, "\r\n"+v+"\r\n") {
			t.Errorf("dump has no add of %s=%s:\n%s", k, v, dump)
		}
	}
}
