package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
)

// logWriter adapts memberlist's *log.Logger output to slog, one line per
// Write (log.Logger writes each record whole). It also watches for the one
// line that reveals a suspicion, which memberlist reports no other way.
// memberlist writes from its own goroutines, sometimes with locks held, so
// Write only logs and enqueues.
type logWriter struct {
	log     *slog.Logger
	suspect func(name string)
	// mismatched: hosts already reported as speaking with another key or
	// label (see mismatch).
	mismatched onceSet
}

func newStdLogger(l *slog.Logger, suspect func(string)) *log.Logger {
	return log.New(&logWriter{log: l.With("component", "memberlist"), suspect: suspect}, "", 0)
}

// memberlist's words for a peer it cannot understand, in what it logs on
// receiving and in Join's errors: another --gossip-key, none where this
// node has one or the reverse, another label (the cluster name).
var mismatchReasons = []string{
	"no installed keys could decrypt the message",
	"remote state is encrypted and encryption is not configured",
	"encryption is configured but remote state is not encrypted",
	"unacceptable label",
}

// mismatch returns the reason in s that says the other end has another
// key or label, or "".
func mismatch(s string) string {
	for _, r := range mismatchReasons {
		if strings.Contains(s, r) {
			return r
		}
	}
	return ""
}

// mismatchHint ends both sides' warnings.
const mismatchHint = "another --gossip-key (or none) or another cluster label: gossip cannot talk to it, so it is never seen alive"

// onceSet remembers keys, up to a bound (a flood of spoofed addresses
// must not grow it without end); past the bound nothing is new.
type onceSet struct {
	mu   sync.Mutex // guards seen
	seen map[string]struct{}
}

// first reports whether key is new, and remembers it.
func (o *onceSet) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[key]; ok || len(o.seen) >= 1024 {
		return false
	}
	if o.seen == nil {
		o.seen = make(map[string]struct{})
	}
	o.seen[key] = struct{}{}
	return true
}

// fromHost is the host of the "from=host:port" memberlist appends to what
// it logs about a connection or packet; the port of a stream is the
// sender's ephemeral one, so only the host identifies it.
func fromHost(line string) (string, bool) {
	_, from, ok := strings.Cut(line, "from=")
	if !ok {
		return "", false
	}
	from, _, _ = strings.Cut(from, " ")
	if host, _, err := net.SplitHostPort(from); err == nil {
		return host, true
	}
	return from, true
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
	if r := mismatch(line); r != "" {
		// memberlist says so on every attempt: once per host is enough.
		// A line without "from=" is about a Join of ours, which
		// Gossip.reportMismatches reports by node.
		host, received := fromHost(line)
		if received && w.mismatched.first(host+" "+r) {
			w.log.Warn("gossip: a peer was refused: "+mismatchHint, "from_host", host, "reason", r)
		}
		level = slog.LevelDebug
	}
	if rest, ok := strings.CutPrefix(line, suspectPrefix); ok {
		if name, ok := strings.CutSuffix(rest, suspectSuffix); ok {
			w.suspect(name)
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
