package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// warmServer is one process of a warm-restart scenario: shoal or memcached,
// with -e.
type warmServer struct {
	bin  string
	args []string // besides -p and -e
}

// start runs the server on addr with the memory file; it returns the
// process once it answers.
func (w warmServer) start(t *testing.T, addr, file string, extra ...string) *exec.Cmd {
	t.Helper()
	_, port, _ := strings.Cut(addr, ":")
	args := append([]string{"-p", port, "-l", "127.0.0.1", "-U", "0", "-A", "-e", file}, w.args...)
	cmd := exec.Command(w.bin, append(args, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testutil.WaitUntil(t, 10*time.Second, w.bin+" to serve", func() (bool, string) {
		_, err := testutil.TextLines(addr, "version\r\n", 1)
		return err == nil, fmt.Sprint(err)
	})
	return cmd
}

// stopped waits for cmd to exit.
func stopped(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not stop")
	}
}

// warmScenario writes, stops the server the way stop says, starts it
// again with extra flags and returns what a get of every key answers.
func warmScenario(t *testing.T, w warmServer, file string, stop func(*testing.T, string, *exec.Cmd), extra ...string) string {
	addr := testutil.FreeAddr(t)
	cmd := w.start(t, addr, file)
	var req strings.Builder
	req.WriteString("set gone 0 0 1\r\ng\r\nflush_all\r\n")
	keys := []string{"gone", "short", "appended", "deleted", "big"}
	for i := range 50 {
		fmt.Fprintf(&req, "set k%d %d 0 %d\r\n%s\r\n", i, i, i+1, strings.Repeat("v", i+1))
		keys = append(keys, fmt.Sprint("k", i))
	}
	req.WriteString("set short 1 2 5\r\nshort\r\n")
	req.WriteString("set appended 2 0 1\r\na\r\nappend appended 0 0 2\r\nbc\r\nprepend appended 0 0 1\r\nz\r\n")
	req.WriteString("set deleted 0 0 1\r\nd\r\ndelete deleted\r\n")
	fmt.Fprintf(&req, "set big 3 0 %d\r\n%s\r\n", 700<<10, strings.Repeat("B", 700<<10))
	req.WriteString("set k0 7 0 2\r\nk0\r\n")
	if _, err := testutil.TextLines(addr, req.String(), 60); err != nil {
		t.Fatal(err)
	}
	stop(t, addr, cmd)
	time.Sleep(2100 * time.Millisecond) // "short" expires while it is down
	addr = testutil.FreeAddr(t)
	w.start(t, addr, file, extra...)
	out := exchange(t, addr, "get "+strings.Join(keys, " ")+"\r\n")
	return strings.ReplaceAll(strings.TrimSuffix(out, "\r\n"), "\r\n", "\n")
}

func gracefulCmd(t *testing.T, addr string, cmd *exec.Cmd) {
	exchange(t, addr, "shutdown graceful\r\n")
	stopped(t, cmd)
}

func plainCmd(t *testing.T, addr string, cmd *exec.Cmd) {
	exchange(t, addr, "shutdown\r\n")
	stopped(t, cmd)
}

func usr1(t *testing.T, _ string, cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGUSR1)
	stopped(t, cmd)
}

// TestWarmRestartProcess: a node stopped by "shutdown graceful" or SIGUSR1
// with -e serves its items again after a restart with the same file and
// settings, TTLs counting on and flush_all's effect kept; stopped plainly
// or restarted with another -m, it starts clean. The replies are compared
// with memcached 1.6.18's for the same steps where it is installed.
func TestWarmRestartProcess(t *testing.T) {
	t.Parallel()
	servers := map[string]warmServer{"shoal": {bin: shoalBinary(t)}}
	if mc, err := exec.LookPath("memcached"); err == nil {
		servers["memcached"] = warmServer{bin: mc, args: []string{"-u", "nobody"}}
	}
	cases := map[string]struct {
		stop  func(*testing.T, string, *exec.Cmd)
		extra []string
		warm  bool
		only  string // a case for one server only
	}{
		"shutdown graceful": {stop: gracefulCmd, warm: true},
		"SIGUSR1":           {stop: usr1, warm: true, only: "shoal"},
		"plain shutdown":    {stop: plainCmd},
		"other -m":          {stop: gracefulCmd, extra: []string{"-m", "128"}},
	}
	var mu sync.Mutex
	got := map[string]map[string]string{}
	for name, tc := range cases {
		for sname, srv := range servers {
			if tc.only != "" && tc.only != sname {
				continue
			}
			t.Run(name+"/"+sname, func(t *testing.T) {
				t.Parallel()
				dir, err := os.MkdirTemp("", "warm-")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(dir) })
				os.Chmod(dir, 0777) // memcached runs as nobody
				out := warmScenario(t, srv, filepath.Join(dir, "mem"), tc.stop, tc.extra...)
				mu.Lock()
				if got[name] == nil {
					got[name] = map[string]string{}
				}
				got[name][sname] = out
				mu.Unlock()
				switch {
				case !tc.warm && out != "END":
					t.Fatalf("a clean start answered:\n%s", out)
				case tc.warm:
					for _, want := range []string{"VALUE k0 7 2\nk0", "VALUE k49 49 50\n" + strings.Repeat("v", 50), "VALUE appended 2 4\nzabc", "VALUE big 3 716800"} {
						if !strings.Contains(out, want) {
							t.Fatalf("no %q after the restart:\n%.400s", want, out)
						}
					}
					for _, gone := range []string{"VALUE gone", "VALUE short", "VALUE deleted"} {
						if strings.Contains(out, gone) {
							t.Fatalf("%q came back:\n%.400s", gone, out)
						}
					}
				}
			})
		}
	}
	t.Cleanup(func() {
		for name, by := range got {
			if m, ok := by["memcached"]; ok && by["shoal"] != m {
				t.Errorf("%s: shoal answered\n%.300s\nmemcached\n%.300s", name, by["shoal"], m)
			}
		}
	})
}
