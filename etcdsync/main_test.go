package etcdsync

import (
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the tests wait for
	// etcd: leases, restarts, watches.
	testutil.Main(m, 6)
}
