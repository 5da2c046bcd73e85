// Package testbin builds the shoal command for the tests that run real
// nodes: the root package's process tests, client, e2e/cluster,
// e2e/history and e2e/hostile; and the etcd process package testetcd
// runs. Only tests import it.
//
// The binary is built once per test process into a directory that outlives
// it, one per module checkout, so that `go test ./...` links it once, not
// once per package: go build leaves an up-to-date binary as it is (a link
// is ~3 CPU-seconds here, more under the load of a whole test run). A file
// lock orders the packages' builds; go build replaces a stale binary by
// renaming a new one over it, so a process still running the old one is
// not disturbed.
package testbin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

var (
	once sync.Once
	path string
	err  error

	etcdOnce sync.Once
	etcdPath string
	etcdErr  error
)

// Path returns the shoal binary, building it on the first call; a build
// failure fails t.
func Path(t testing.TB) string {
	t.Helper()
	bin, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Build is Path for callers without a testing.TB: the binary, built on
// the first call, or why it could not be.
func Build() (string, error) {
	once.Do(func() { path, err = build(".", "shoal") })
	return path, err
}

// Etcd is the one-member etcd package testetcd runs as a process
// (internal/testetcd/etcdproc), built on the first call as Build builds
// shoal: the test binaries that start an etcd need not link its server.
func Etcd() (string, error) {
	etcdOnce.Do(func() { etcdPath, etcdErr = build("./internal/testetcd/etcdproc", "etcd") })
	return etcdPath, etcdErr
}

// build brings the checkout's binary name, of package pkg, up to date
// under the lock and returns its path.
func build(pkg, name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("shoal-testbin-%d-%s", os.Getuid(), hex.EncodeToString(sum[:6])))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory of the go.mod above the working directory
// (a test runs in its package's directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
