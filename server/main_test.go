package server

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the conformance cases
	// wait for TTLs and delayed flushes, and TestKeyTestsUnderEventLoop
	// for a second run of the suite in a child process.
	testutil.Parallel(6)
	startUnderEventLoop()
	code := m.Run()
	if u := &underEventLoop; u.cmd != nil && u.cmd.Process != nil {
		u.cmd.Process.Kill() // gone already unless this run stopped early
	}
	os.Exit(code)
}

// underEventLoop is the child process TestKeyTestsUnderEventLoop checks:
// the key tests again, every server on an event loop. It starts with the
// package, so that it runs beside the serial tests instead of after them;
// nil when this run does not include that test.
var underEventLoop struct {
	cmd *exec.Cmd
	out bytes.Buffer
	// result waits for the child's exit, once however often it is asked
	// (-count above 1).
	result func() error
}

// eventLoopTests are the tests the child runs. memcached's side of the
// conformance suite does not depend on the driver: it ran once already.
var eventLoopTests = []string{"-test.run", "^(TestConformance|FuzzConn|TestStats.*|TestMetaStats|TestConnectionLimit|TestIdleTimeoutClosesConnection|TestOversizedValueIsSwallowed|TestLongLineClosesConnection|TestMultiGet.*)$",
	"-test.skip", "^TestConformance$/^memcached$", "-test.count=1", "-test.v"}

func startUnderEventLoop() {
	if os.Getenv(eventLoopEnv) == "1" || testing.Short() || !selected("TestKeyTestsUnderEventLoop") {
		return
	}
	u := &underEventLoop
	u.cmd = exec.Command(os.Args[0], eventLoopTests...)
	u.cmd.Env = append(os.Environ(), eventLoopEnv+"=1")
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.out
	done := make(chan error, 1)
	u.result = sync.OnceValue(func() error { return <-done })
	if err := u.cmd.Start(); err != nil {
		done <- err
		return
	}
	go func() { done <- u.cmd.Wait() }()
}

// selected reports whether -test.run and -test.skip let the top-level test
// name run (their first element; an unparsable pattern counts as yes).
func selected(name string) bool {
	match := func(flagName string, empty bool) bool {
		f := flag.Lookup(flagName)
		if f == nil || f.Value.String() == "" {
			return empty
		}
		pat, _, _ := strings.Cut(f.Value.String(), "/")
		ok, err := regexp.MatchString(pat, name)
		return ok || err != nil
	}
	return match("test.run", true) && !match("test.skip", false)
}
