package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// logWriter adapts memberlist's *log.Logger output to slog, one line per
// Write (log.Logger writes each record whole). It also watches for the one
// line that reveals a suspicion, which memberlist reports no other way.
// memberlist writes from its own goroutines, sometimes with locks held, so
// Write only logs and enqueues.
type logWriter struct {
	log     *slog.Logger
	suspect func(name string)
}

func newStdLogger(l *slog.Logger, suspect func(string)) *log.Logger {
	return log.New(&logWriter{log: l.With("component", "memberlist"), suspect: suspect}, "", 0)
}

// memberlist v0.7.0 logs "[INFO] memberlist: Suspect <name> has failed,
// no acks received" just before it marks a peer it probed as suspect.
const (
	suspectPrefix = "Suspect "
	suspectSuffix = " has failed, no acks received"
)

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelInfo
	for _, l := range []struct {
		tag   string
		level slog.Level
	}{
		{"[DEBUG] ", slog.LevelDebug},
		{"[INFO] ", slog.LevelInfo},
		{"[WARN] ", slog.LevelWarn},
		{"[ERR] ", slog.LevelError},
		{"[ERROR] ", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, l.tag); ok {
			line, level = rest, l.level
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if rest, ok := strings.CutPrefix(line, suspectPrefix); ok {
		if name, ok := strings.CutSuffix(rest, suspectSuffix); ok {
			w.suspect(name)
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
