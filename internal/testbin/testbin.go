// Package testbin builds the shoal command once per test process, for the
// tests that run real nodes: the root package's process tests, e2e/cluster,
// e2e/history and e2e/hostile. Only tests import it.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	dir  string
	path string
	err  error
)

// Path returns the shoal binary, building it on the first call; a build
// failure fails t.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if dir, err = os.MkdirTemp("", "shoal-bin-"); err != nil {
			return
		}
		path = filepath.Join(dir, "shoal")
		if out, berr := exec.Command("go", "build", "-o", path, "shoal").CombinedOutput(); berr != nil {
			err = fmt.Errorf("go build: %v\n%s", berr, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Cleanup removes the binary Path built, if any: call it from TestMain
// after the tests ran.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
