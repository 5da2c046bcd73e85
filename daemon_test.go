package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"golang.org/x/sys/unix"

	"shoal/internal/testutil"
)

// TestDaemonAndPidFile: -d returns at once and leaves the node serving in
// the background, in its own session; -P holds its pid, removed when it
// stops on SIGTERM; -f and -D show in stats settings.
func TestDaemonAndPidFile(t *testing.T) {
	t.Parallel()
	bin := shoalBinary(t)
	pidFile := filepath.Join(t.TempDir(), "shoal.pid")
	addr := testutil.FreeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	out, err := exec.Command(bin, "-d", "-P", pidFile, "-p", port, "-f", "1.25", "-D", "/").CombinedOutput()
	if err != nil {
		t.Fatalf("shoal -d: %v %s", err, out)
	}
	var pid int
	testutil.WaitUntil(t, 10*time.Second, "the pid file", func() (bool, string) {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0, string(b)
	})
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("daemon session %d, %v; want its own (%d)", sid, err, pid)
	}
	mc := memcache.New(addr)
	testutil.WaitUntil(t, 10*time.Second, "the daemon to serve", func() (bool, string) {
		err := mc.Set(&memcache.Item{Key: "d", Value: []byte("bg")})
		return err == nil, ""
	})
	lines, _ := testutil.TextLines(addr, "stats settings\r\n", 60) // of its ~78 lines
	all := strings.Join(lines, "\n")
	for _, want := range []string{"STAT growth_factor 1.25", "STAT stat_key_prefix /"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in stats settings", want)
		}
	}
	syscall.Kill(pid, syscall.SIGTERM)
	testutil.WaitUntil(t, 10*time.Second, "the pid file to go", func() (bool, string) {
		_, err := os.Stat(pidFile)
		return os.IsNotExist(err), ""
	})
}
