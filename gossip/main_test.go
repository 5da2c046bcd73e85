package gossip

import (
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the tests wait for
	// memberlist's probes and suspicion timeouts.
	testutil.Main(m, 6)
}
