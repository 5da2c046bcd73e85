package history

import (
	"fmt"
	"strings"
	"time"
)

// Report is what Check found, per episode.
type Report struct {
	Options  Options
	Episodes []EpisodeReport
}

// EpisodeReport counts one episode's operations and violations.
type EpisodeReport struct {
	Kind, Target, Detail string

	Writes, Reads int
	// Excused acknowledged writes (kill -9 within KillLag): not counted
	// as acknowledged.
	Excused int
	// ExcusedLost: keys lost at the checkpoint but for the excuse.
	ExcusedLost int
	// Lost keys at the checkpoint, against writes acknowledged since the
	// previous one found them.
	Lost int
	// Stale reads, misses included, before and after Settled + Grace.
	StaleInFault, StaleAfter int
	// Misses among the stale reads.
	Misses int
	// Divergent keys at the checkpoint.
	Divergent int
	// Client errors and timeouts, before and after Settled + Grace
	// (checkpoint reads count as after).
	ErrorsInFault, ErrorsAfter int
	// Recovery is from healing the fault to the cluster settled.
	Recovery time.Duration

	max                                                 int
	lost, stale, staleAfter, divergent, errors, excused exampleList
}

type exampleList struct {
	lines []string
}

func (e *EpisodeReport) note(l *exampleList, format string, args ...any) {
	if len(l.lines) < e.max {
		l.lines = append(l.lines, fmt.Sprintf(format, args...))
	}
}

// Name is the episode's kind and target, e.g. "kill -9 n2".
func (e *EpisodeReport) Name() string {
	if e.Target == "" {
		return e.Kind
	}
	return e.Kind + " " + e.Target
}

// Examples lists the first violations of each kind, for a log.
func (e *EpisodeReport) Examples() string {
	var b strings.Builder
	for _, s := range []struct {
		what string
		l    *exampleList
	}{{"lost", &e.lost}, {"stale", &e.stale}, {"stale", &e.staleAfter}, {"divergent", &e.divergent}, {"errors", &e.errors}, {"excused", &e.excused}} {
		for _, line := range s.l.lines {
			fmt.Fprintf(&b, "\t%s: %s\n", s.what, line)
		}
	}
	return b.String()
}

// Total sums the episodes of one kind ("" for all).
func (r *Report) Total(kind string) (t EpisodeReport, count int) {
	t.Kind = kind
	for i := range r.Episodes {
		e := &r.Episodes[i]
		if kind != "" && e.Kind != kind {
			continue
		}
		count++
		t.Writes += e.Writes
		t.Reads += e.Reads
		t.Excused += e.Excused
		t.ExcusedLost += e.ExcusedLost
		t.Lost += e.Lost
		t.StaleInFault += e.StaleInFault
		t.StaleAfter += e.StaleAfter
		t.Misses += e.Misses
		t.Divergent += e.Divergent
		t.ErrorsInFault += e.ErrorsInFault
		t.ErrorsAfter += e.ErrorsAfter
		t.Recovery = max(t.Recovery, e.Recovery)
	}
	return t, count
}

// Table is one Markdown row per fault kind, in the order first injected,
// and a total.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| fault | count | ops | lost | stale reads in fault / after settle (misses) | divergent keys | errors in fault / after settle | excused writes (lost) | recovery (max) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	var kinds []string
	seen := make(map[string]bool)
	for _, e := range r.Episodes {
		if !seen[e.Kind] {
			seen[e.Kind] = true
			kinds = append(kinds, e.Kind)
		}
	}
	row := func(name string, t EpisodeReport, n int) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d / %d (%d) | %d | %d / %d | %d (%d) | %.1f s |\n",
			name, n, t.Writes+t.Reads, t.Lost, t.StaleInFault, t.StaleAfter, t.Misses, t.Divergent,
			t.ErrorsInFault, t.ErrorsAfter, t.Excused, t.ExcusedLost, t.Recovery.Seconds())
	}
	for _, k := range kinds {
		t, n := r.Total(k)
		row(k, t, n)
	}
	t, n := r.Total("")
	row("**total**", t, n)
	return b.String()
}

// Episodes lists every episode on one line, with its examples below.
func (r *Report) Detail() string {
	var b strings.Builder
	for i := range r.Episodes {
		e := &r.Episodes[i]
		fmt.Fprintf(&b, "%2d %-22s %-24s ops %5d lost %d stale %d/%d (misses %d) divergent %d errors %d/%d excused %d (lost %d) recovery %.1f s\n",
			i, e.Name(), e.Detail, e.Writes+e.Reads, e.Lost, e.StaleInFault, e.StaleAfter, e.Misses, e.Divergent,
			e.ErrorsInFault, e.ErrorsAfter, e.Excused, e.ExcusedLost, e.Recovery.Seconds())
		b.WriteString(e.Examples())
	}
	return b.String()
}
