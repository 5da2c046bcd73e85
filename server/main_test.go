package server

import (
	"os"
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Twelve at once unless -parallel says otherwise: the conformance
	// cases (a server per file) sleep for TTLs and delayed flushes, and
	// TestKeyTestsUnderEventLoop waits for a second run of the suite in a
	// child process.
	testutil.Parallel(12)
	os.Exit(m.Run())
}
