package server

import (
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the conformance cases
	// wait for TTLs and delayed flushes, and TestKeyTestsUnderEventLoop
	// for a second run of the suite in a child process.
	testutil.Main(m, 6)
}
