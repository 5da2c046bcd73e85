package main

import (
	"os"
	"strings"
	"testing"
)

// TestReportCPU: the summed figures and each pid's share, per operation.
func TestReportCPU(t *testing.T) {
	var b strings.Builder
	// 100 ticks a second; 1000 operations in 2 s. Pid 7 spent 30 ticks
	// (300 µs per op), pid 9 10 ticks (100 µs per op).
	reportCPU(&b, []int{7, 9}, []uint64{100, 50}, []uint64{130, 60}, 100, 1000, 2)
	want := "server_cpu_seconds=0.40\nserver_cpu_util=0.200\nops_per_cpu_sec=2500\ncpu_us_per_op=400.000\npid_cpu_us_per_op=7:300.000,9:100.000\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	reportCPU(&b, []int{7}, []uint64{5}, []uint64{5}, 100, 10, 1)
	if got := b.String(); got != "server_cpu_seconds=0.00\nserver_cpu_util=0.000\nops_per_cpu_sec=NA\ncpu_us_per_op=NA\n" {
		t.Errorf("one pid, no CPU: got %q", got)
	}
}

// TestCPUTicksEach reads this process's own ticks, in -pid's order.
func TestCPUTicksEach(t *testing.T) {
	me := os.Getpid()
	ticks, err := cpuTicksEach([]int{me, me})
	if err != nil || len(ticks) != 2 || ticks[1] < ticks[0] {
		t.Fatalf("cpuTicksEach: %v, %v", ticks, err)
	}
	if _, err := cpuTicksEach([]int{me, -1}); err == nil {
		t.Error("a pid with no /proc entry: no error")
	}
}
