package gossip

import (
	"os"
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the tests wait for
	// memberlist's probes and suspicion timeouts.
	testutil.Parallel(6)
	os.Exit(m.Run())
}
