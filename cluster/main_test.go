package cluster

import (
	"testing"

	"shoal/internal/testutil"
)

func TestMain(m *testing.M) {
	// Six at once unless -parallel says otherwise: the tests wait for
	// etcd, nodes joining and warming.
	testutil.Main(m, 6)
}
