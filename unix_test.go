package main

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// TestUnixSocket: -s serves a UNIX socket with -a's access mask, instead
// of TCP, as memcached does; gomemcache reaches it by path; the settings
// and conns stats say so.
func TestUnixSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shoal.sock")
	addr := startNode(t, "-s", path, "-a", "766")
	if addr != path {
		t.Fatalf("listening on %q, want %q", addr, path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0766 {
		t.Fatalf("socket file %v, %v", fi.Mode(), err)
	}
	mc := memcache.New(path)
	if err := mc.Set(&memcache.Item{Key: "k", Value: []byte("over unix")}); err != nil {
		t.Fatal(err)
	}
	if it, err := mc.Get("k"); err != nil || string(it.Value) != "over unix" {
		t.Fatalf("get: %v %v", it, err)
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("stats settings\r\nstats conns\r\n"))
	r := bufio.NewReader(c)
	var got []string
	for ends := 0; ends < 2; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "END\r\n" {
			ends++
		}
		got = append(got, strings.TrimSpace(line))
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"STAT domain_socket " + path, "STAT umask 766", "STAT inter NULL", "addr unix:" + path, "listen_addr unix:" + path} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in\n%s", want, all)
		}
	}
}
