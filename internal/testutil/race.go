//go:build race

package testutil

// Race is true in a build with the race detector, whose instrumentation
// of synchronization allocates: allocation counts there mean nothing.
const Race = true
