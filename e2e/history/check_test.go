package history

import (
	"strings"
	"testing"
	"time"
)

// Hand-written histories. Times are in milliseconds from the start of the
// run; the baseline episode settles at 0, so anything before 1000 ms is
// "in fault" (the grace second) and anything after is "after settle".

func t_(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

func wr(key string, v int64, start, end int, res Result) Op {
	return Op{Kind: Write, Key: key, Value: v, Node: "n1", Start: t_(start), End: t_(end), Result: res}
}

// rd is a read of v (0: a miss).
func rd(key string, v int64, start, end int) Op {
	op := Op{Kind: Read, Key: key, Value: v, Node: "n2", Start: t_(start), End: t_(end), Result: OK}
	if v == 0 {
		op.Result = Miss
	}
	return op
}

func final(op Op) Op { op.Final = true; return op }

// failed turns op into a failure; a failed read read nothing.
func failed(op Op, res Result) Op {
	op.Result, op.Err = res, "boom"
	if op.Kind == Read {
		op.Value = 0
	}
	return op
}

// baseline is the no-fault episode from 0, with a checkpoint at
// [start, end] where key k is owned by n1 and n2 holding c1 and c2.
func baseline(start, end int, copies map[string][2]int64) Episode {
	return Episode{Kind: KindNone, Check: checkpoint(start, end, copies)}
}

func checkpoint(start, end int, copies map[string][2]int64) Checkpoint {
	c := Checkpoint{Start: t_(start), End: t_(end), Owners: map[string][]string{}, Copies: map[string]map[string]int64{}}
	for k, v := range copies {
		c.Owners[k] = []string{"n1", "n2"}
		c.Copies[k] = map[string]int64{"n1": v[0], "n2": v[1]}
	}
	return c
}

// counts is what a case expects of one episode.
type counts struct {
	lost, staleIn, staleAfter, misses, divergent, errIn, errAfter, excused, excusedLost int
}

func countsOf(e *EpisodeReport) counts {
	return counts{e.Lost, e.StaleInFault, e.StaleAfter, e.Misses, e.Divergent, e.ErrorsInFault, e.ErrorsAfter, e.Excused, e.ExcusedLost}
}

func TestCheck(t *testing.T) {
	ok := map[string][2]int64{"k": {3, 3}}
	cases := map[string]struct {
		ops      []Op
		episodes []Episode
		want     []counts // per episode
	}{
		"clean: every read returns the latest or a concurrent write": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), rd("k", 1, 11, 12),
				wr("k", 2, 20, 30, OK), rd("k", 1, 25, 40), // began before 2 was acked
				rd("k", 2, 31, 32),
				wr("k", 3, 1500, 1510, OK), rd("k", 3, 1600, 1601),
				final(rd("k", 3, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, ok)},
			want:     []counts{{}},
		},
		"stale read after settling": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK), wr("k", 3, 40, 50, OK),
				rd("k", 2, 2000, 2001), // 3 was acked at 50
				final(rd("k", 3, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, ok)},
			want:     []counts{{staleAfter: 1}},
		},
		"stale read in the grace second": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
				rd("k", 1, 500, 501),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {2, 2}})},
			want:     []counts{{staleIn: 1}},
		},
		"a miss after an acked write is stale": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), rd("k", 0, 2000, 2001),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {1, 1}})},
			want:     []counts{{staleAfter: 1, misses: 1}},
		},
		"a miss before any write is not": {
			ops: []Op{
				rd("k", 0, 0, 1), wr("k", 1, 5, 10, OK), rd("k", 0, 6, 7),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {1, 1}})},
			want:     []counts{{}},
		},
		"a value never written is stale": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), rd("k", 99, 2000, 2001),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {1, 1}})},
			want:     []counts{{staleAfter: 1}},
		},
		"a timed-out write may land any time: neither stale nor lost": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				failed(wr("k", 2, 20, 2020, OK), Timeout),
				wr("k", 3, 2100, 2110, OK),
				rd("k", 2, 2500, 2501), // 2 may have landed after 3
				final(rd("k", 2, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {2, 2}})},
			want:     []counts{{errAfter: 1}}, // it ended after the grace second
		},
		"lost: no owner holds the last acked write": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
				final(rd("k", 1, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {1, 1}})},
			want:     []counts{{lost: 1}},
		},
		"lost and divergent: reads return the older copy": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
				final(rd("k", 1, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {1, 2}})},
			want:     []counts{{lost: 1, divergent: 1}},
		},
		"divergent, not lost: reads return the newer copy": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
				final(rd("k", 2, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {2, 1}})},
			want:     []counts{{divergent: 1}},
		},
		"an owner missing the key diverges": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				final(rd("k", 1, 3000, 3001)),
			},
			episodes: []Episode{baseline(3000, 3100, map[string][2]int64{"k": {1, Absent}})},
			want:     []counts{{divergent: 1}},
		},
		"errors in fault and after settling": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				failed(rd("k", 1, 1500, 1501), Failed),
				failed(rd("k", 1, 5500, 5501), Timeout),
				failed(rd("k", 1, 9000, 9001), Failed),
				final(rd("k", 1, 3000, 3001)), final(rd("k", 1, 8000, 8001)),
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindStop, Target: "n2", Start: t_(5000), Healed: t_(6000), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {1, 1}})},
			},
			want: []counts{{errAfter: 1}, {errIn: 1, errAfter: 1}},
		},
		"a loss is counted once, in the episode that acked the write": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
				final(rd("k", 1, 3000, 3001)),
				final(rd("k", 1, 8000, 8001)), // still lost, same write
				wr("j", 1, 5100, 5110, OK), wr("j", 2, 5200, 5210, OK),
				final(rd("j", 1, 8000, 8001)), // lost in the fault
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindStop, Target: "n2", Start: t_(5000), Healed: t_(6000), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {1, 1}, "j": {1, 1}})},
			},
			want: []counts{{lost: 1}, {lost: 1}},
		},
		"kill -9 of an owner excuses writes acked just before it": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				final(rd("k", 1, 3000, 3001)),
				wr("k", 2, 4900, 4950, OK), // acked 50 ms before the kill of n2, an owner
				final(rd("k", 1, 8000, 8001)),
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindKill, Target: "n2", Start: t_(5000), Healed: t_(5500), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {1, 1}})},
			},
			want: []counts{{}, {excused: 1, excusedLost: 1}},
		},
		"an excused write that survived is not counted as lost": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				final(rd("k", 1, 3000, 3001)),
				wr("k", 2, 4900, 4950, OK),
				final(rd("k", 2, 8000, 8001)),
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindKill, Target: "n2", Start: t_(5000), Healed: t_(5500), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {2, 2}})},
			},
			want: []counts{{}, {excused: 1}},
		},
		"an error belongs to the episode it ended in": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				final(rd("k", 1, 3000, 3001)),
				failed(wr("k", 2, 4990, 5010, OK), Failed), // in flight at the kill
				final(rd("k", 2, 8000, 8001)),
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindKill, Target: "n2", Start: t_(5000), Healed: t_(5500), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {2, 2}})},
			},
			want: []counts{{}, {errIn: 1}},
		},
		"kill -9 of a node that does not own the key excuses nothing": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				final(rd("k", 1, 3000, 3001)),
				wr("k", 2, 4900, 4950, OK),
				final(rd("k", 1, 8000, 8001)),
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindKill, Target: "n3", Start: t_(5000), Healed: t_(5500), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {1, 1}})},
			},
			want: []counts{{}, {lost: 1}},
		},
		"kill -9 excuses nothing acked long before it": {
			ops: []Op{
				wr("k", 1, 0, 10, OK),
				final(rd("k", 1, 3000, 3001)),
				wr("k", 2, 4000, 4010, OK),
				final(rd("k", 1, 8000, 8001)),
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
				{Kind: KindKill, Target: "n2", Start: t_(5000), Healed: t_(5500), Settled: t_(7000),
					Check: checkpoint(8000, 8100, map[string][2]int64{"k": {1, 1}})},
			},
			want: []counts{{}, {lost: 1}},
		},
		"reads are judged in the episode they began in": {
			ops: []Op{
				wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
				final(rd("k", 2, 3000, 3001)),
				rd("k", 1, 5100, 5101), // in the fault
				rd("k", 1, 9000, 9001), // after it settled
			},
			episodes: []Episode{
				baseline(3000, 3100, map[string][2]int64{"k": {2, 2}}),
				{Kind: KindStop, Target: "n2", Start: t_(5000), Healed: t_(6000), Settled: t_(7000),
					Check: checkpoint(10000, 10100, map[string][2]int64{"k": {2, 2}})},
			},
			want: []counts{{}, {staleIn: 1, staleAfter: 1}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := Check(tc.ops, tc.episodes, Options{})
			for i, want := range tc.want {
				if got := countsOf(&r.Episodes[i]); got != want {
					t.Errorf("episode %d (%s): got %+v, want %+v\n%s", i, r.Episodes[i].Name(), got, want, r.Detail())
				}
			}
		})
	}
}

func TestTable(t *testing.T) {
	ops := []Op{
		wr("k", 1, 0, 10, OK), wr("k", 2, 20, 30, OK),
		final(rd("k", 1, 3000, 3001)),
		rd("k", 1, 5100, 5101),
	}
	episodes := []Episode{
		baseline(3000, 3100, map[string][2]int64{"k": {1, 1}}),
		{Kind: KindStop, Target: "n2", Start: t_(5000), Healed: t_(6000), Settled: t_(7500),
			Check: checkpoint(8000, 8100, map[string][2]int64{"k": {1, 2}})},
	}
	table := Check(ops, episodes, Options{}).Table()
	for _, want := range []string{
		"| none | 1 | 3 | 1 | 0 / 0 (0) | 0 | 0 / 0 | 0 (0) | 0.0 s |",
		"| sigstop | 1 | 1 | 0 | 1 / 0 (0) | 1 | 0 / 0 | 0 (0) | 1.5 s |",
		"| **total** | 2 | 4 | 1 | 1 / 0 (0) | 1 | 0 / 0 | 0 (0) | 1.5 s |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
