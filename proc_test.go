package main

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"shoal/internal/statsread"
	"shoal/internal/testbin"
	"shoal/internal/testutil"
)

// The root package's tests run shoal in-process (startNode) and, for
// what needs a process of its own (-d, signals, an environment of its
// own), as the built command. The cluster's process tests are in
// e2e/cluster.

func TestMain(m *testing.M) {
	testutil.Parallel(6)
	os.Exit(m.Run())
}

// shoalBinary is the shoal command, built once for the whole test run.
func shoalBinary(t testing.TB) string { return testbin.Path(t) }

// startCmd starts cmd, its stdout and stderr to a buffer, and kills it in
// t.Cleanup, which logs the output if the test failed. The channel is
// closed once it exits; output may be read then.
func startCmd(t testing.TB, cmd *exec.Cmd) (exited <-chan struct{}, output *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", cmd.Path, out.String())
		}
	})
	return done, &out
}

// clusterStats asks the node for "stats cluster"; nil when it does not answer.
func clusterStats(addr string) map[string]string { return statsread.Dial(addr, "cluster") }
