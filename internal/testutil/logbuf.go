package testutil

import (
	"strings"
	"sync"
	"time"
)

// LogBuffer is a log sink a test reads while other goroutines (a node's
// logger) write to it.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor waits up to d for s to appear at or after offset from, and
// returns the offset just after it, or -1 if it did not appear.
func (l *LogBuffer) WaitFor(d time.Duration, from int, s string) int {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if i := strings.Index(l.String()[from:], s); i >= 0 {
			return from + i + len(s)
		}
		if !time.Now().Before(end) {
			return -1
		}
	}
}
