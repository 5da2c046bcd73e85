package server

import (
	"bufio"
	"strings"
	"testing"

	"shoal/protocol"
	"shoal/store"
)

func TestFamily(t *testing.T) {
	cases := map[string]Family{
		"get k": FamGet, "gats 0 k": FamGet, "set k 0 0 1\r\nx": FamSet, "cas k 0 0 1 5\r\nx": FamSet,
		"delete k": FamDelete, "incr k 1": FamArith, "decr k 1": FamArith, "touch k 0": FamTouch,
		"mg k v": FamMetaGet, "ms k 1\r\nx": FamMetaSet, "md k": FamMetaDelete, "ma k": FamMetaArith,
		"mn": FamOther, "me k": FamOther, "stats": FamOther, "flush_all": FamOther, "version": FamOther,
	}
	for line, want := range cases {
		t.Run(line, func(t *testing.T) {
			cmd, _, err := protocol.Parse([]byte(line + "\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := family(cmd); got != want {
				t.Fatalf("family(%q) = %s, want %s", line, Families[got], Families[want])
			}
		})
	}
}

// TestLatencySampled checks that about 1 command in SampleEvery is timed,
// in every family of a strict set/get alternation (a fixed sampling period
// would see only one of them), and that bucket counts add up.
func TestLatencySampled(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := serve(t, Config{}, Local{st})
	nc := dial(t, addr)
	const pairs = 6400
	go nc.Write([]byte(strings.Repeat("set k 0 0 1\r\nx\r\nget k\r\n", pairs)))
	r := bufio.NewReader(nc)
	for range pairs * 4 { // STORED, VALUE, x, END
		if _, err := r.ReadSlice('\n'); err != nil {
			t.Fatal(err)
		}
	}
	snap := srv.Stats()
	for _, f := range []Family{FamGet, FamSet} {
		l := snap.Latency[f]
		want := int64(pairs / SampleEvery)
		if l.Count < want/3 || l.Count > want*3 {
			t.Errorf("%s: %d samples of %d commands, want about %d", Families[f], l.Count, pairs, want)
		}
		var sum int64
		for _, b := range l.Buckets {
			sum += b
		}
		if sum != l.Count || (l.Count > 0 && l.Sum <= 0) {
			t.Errorf("%s: buckets add to %d, count %d, sum %v", Families[f], sum, l.Count, l.Sum)
		}
	}
	if n := snap.Latency[FamDelete].Count; n != 0 {
		t.Errorf("delete: %d samples without a delete", n)
	}
}
