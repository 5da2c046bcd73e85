package testutil

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// LongEnv is the environment variable that runs the long scenarios:
//
//	SHOAL_TEST_LONG=1 go test ./...
//
// An environment variable, not a flag: go test ./... passes a flag to
// every package's test binary, and one that does not define it stops
// there; e2e/history's -long already means something else (faults for
// -duration).
const LongEnv = "SHOAL_TEST_LONG"

// Long skips t unless $SHOAL_TEST_LONG is 1. A long scenario is one that
// takes tens of seconds by design (a fault held past a lease, a soak, a
// partition in network namespaces, restarts of every node): go test ./...
// leaves it out so that it stays a quick check; .ci/run sets the variable
// and runs them all.
func Long(t testing.TB) {
	t.Helper()
	if !LongOn() {
		t.Skip("long scenario: run it with " + LongEnv + "=1")
	}
}

// LongOn reports whether $SHOAL_TEST_LONG asks for the long scenarios,
// for a test that runs a shorter variant of itself otherwise.
func LongOn() bool { return os.Getenv(LongEnv) == "1" }

// Parallel makes n the default of go test's -parallel for this test
// binary: call it from TestMain, before m.Run. A -parallel given on the
// command line wins, and so does GOMAXPROCS when it is larger. It is for
// packages whose tests mostly wait (processes starting, gossip, leases,
// TTLs) rather than compute: there the default, GOMAXPROCS (2 on a small
// machine), leaves the CPU idle.
func Parallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(max(n, runtime.GOMAXPROCS(0))))
	}
}

// Main runs a package's tests with Parallel(n): a whole TestMain for a
// package that needs nothing else.
func Main(m *testing.M, n int) {
	Parallel(n)
	os.Exit(m.Run())
}
