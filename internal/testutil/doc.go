// Package testutil holds the small helpers that tests across shoal's
// packages share: free loopback ports to listen on (FreeAddr, FreeAddrOn,
// FreePort) and polling a condition until it holds or a deadline passes
// (WaitFor, WaitUntil), Long, which skips a long scenario unless
// $SHOAL_TEST_LONG is 1, and Race, true under the race detector (whose
// synchronization allocates, so allocation counts are skipped). It is an ordinary package so any package's tests
// can import it; only tests do.
//
// A test that waits for something to happen should wait for that thing
// with WaitFor, not sleep for a guessed time: WaitFor returns as soon as
// the condition holds and, when it never does, fails saying what was
// awaited (and, with WaitUntil, what was last seen instead).
package testutil
