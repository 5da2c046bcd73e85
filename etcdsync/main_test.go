package etcdsync

import (
	"os"
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the tests wait for
	// etcd: leases, restarts, watches.
	testutil.Parallel(6)
	os.Exit(m.Run())
}
