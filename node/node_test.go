package node

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPIDFileNotWrittenIsKept: when New cannot write the pid file, what is
// at that path (here a directory; a file of another process's) is left
// alone, not removed on the way out.
func TestPIDFileNotWrittenIsKept(t *testing.T) {
	pid := filepath.Join(t.TempDir(), "pid")
	if err := os.Mkdir(pid, 0755); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Port, cfg.MemoryMB, cfg.ConnGoroutines, cfg.PIDFile = 0, 8, true, pid
	if n, err := New(cfg); err == nil {
		n.release()
		t.Fatal("New wrote a pid file over a directory")
	}
	if fi, err := os.Stat(pid); err != nil || !fi.IsDir() {
		t.Fatalf("the pid path after New failed: %v, %v", fi, err)
	}
}

// TestPIDFileRemoved: the pid file New wrote, release removes.
func TestPIDFileRemoved(t *testing.T) {
	pid := filepath.Join(t.TempDir(), "pid")
	cfg := Defaults()
	cfg.Port, cfg.MemoryMB, cfg.ConnGoroutines, cfg.PIDFile = 0, 8, true, pid
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pid); err != nil {
		t.Fatalf("no pid file after New: %v", err)
	}
	n.release()
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Fatalf("pid file after release: %v", err)
	}
}

// TestPortInUse: a client port already taken is New's error, and what New
// made before it (the pid file) is released.
func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid := filepath.Join(t.TempDir(), "pid")
	cfg := Defaults()
	cfg.Port, cfg.MemoryMB, cfg.ConnGoroutines, cfg.PIDFile = ln.Addr().(*net.TCPAddr).Port, 8, true, pid
	n, err := New(cfg)
	if err == nil {
		n.release()
		t.Fatal("New listened on a port already in use")
	}
	if !strings.Contains(err.Error(), "failed to listen on 127.0.0.1 port") {
		t.Errorf("error %q", err)
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Errorf("pid file after New failed: %v", err)
	}
}
