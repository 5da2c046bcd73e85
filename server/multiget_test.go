package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"shoal/store"
)

// multiLocal is a Local with its own GetMulti: it reads every key
// first and hands the hits over afterwards, as a router does, and counts
// its calls.
type multiLocal struct {
	Local
	calls *int
}

func (m multiLocal) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	*m.calls++
	type hit struct {
		i   int
		it  store.Item
		val []byte
	}
	var hits []hit
	for i, k := range keys {
		if it, val, res := m.Get(k, opt, nil); res == store.Hit {
			hits = append(hits, hit{i, it, val})
		}
	}
	for _, h := range hits {
		into(h.i, h.it, h.val)
	}
}

// TestGetMultiSeam: a retrieval of several keys through GetMulti
// answers byte for byte as the per-key loop does (order, duplicates,
// misses, CAS, touch, a bad key) and counts the same.
func TestGetMultiSeam(t *testing.T) {
	long := strings.Repeat("k", 251)
	script := "set a 1 0 2\r\nva\r\nset b 2 0 0\r\n\r\nset c 3 0 3\r\nvcc\r\n" +
		"get a b c\r\n" +
		"get c nope a a b nope2 c\r\n" +
		"gets b nope a\r\n" +
		"gat 100 nope c a\r\n" +
		"gats 0 a b nope\r\n" +
		"get nope\r\n" +
		"get a\r\n"
	// A bad key drops the replies not yet written: it goes on its own.
	const ends = 7
	script2 := "get a b " + long + "\r\nstats\r\nquit\r\n"
	run := func(cache func(Local) Cache) (replies string, stats map[string]string) {
		st, err := store.New(store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, addr := serve(t, Config{}, cache(Local{st}))
		c := dial(t, addr)
		io.WriteString(c, script)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		var out []byte
		for n := 0; n < ends; {
			line, err := r.ReadBytes('\n')
			if err != nil {
				t.Fatalf("%v after %q", err, out)
			}
			out = append(out, line...)
			if string(line) == "END\r\n" {
				n++
			}
		}
		io.WriteString(c, script2)
		rest, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rest...)
		i := bytes.Index(out, []byte("STAT "))
		if i < 0 {
			t.Fatalf("no stats in %q", out)
		}
		stats = map[string]string{}
		for _, l := range strings.Split(string(out[i:]), "\r\n") {
			if f := strings.Fields(l); len(f) == 3 {
				stats[f[1]] = f[2]
			}
		}
		return string(out[:i]), stats
	}
	calls := 0
	want, wantStats := run(func(l Local) Cache { return l })
	got, gotStats := run(func(l Local) Cache { return multiLocal{l, &calls} })
	if got != want {
		t.Errorf("replies through GetMulti:\n%q\nper key:\n%q", got, want)
	}
	if calls != 6 { // every retrieval but the two of one key
		t.Errorf("GetMulti called %d times, want 6", calls)
	}
	for _, name := range []string{"cmd_get", "get_hits", "get_misses", "cmd_touch", "touch_hits", "touch_misses"} {
		if gotStats[name] != wantStats[name] || wantStats[name] == "" {
			t.Errorf("%s = %q, want %q", name, gotStats[name], wantStats[name])
		}
	}
	if !strings.HasSuffix(want, replyBadFormat+"\r\n") {
		t.Errorf("per-key replies do not end with the bad key's error:\n%q", want)
	}
	if !strings.Contains(want, "VALUE c 3 3\r\nvcc\r\nVALUE a 1 2\r\nva\r\nVALUE a 1 2\r\nva\r\nVALUE b 2 0\r\n\r\nVALUE c 3 3\r\nvcc\r\nEND\r\n") {
		t.Errorf("per-key replies lack the duplicate get:\n%q", want)
	}
}

// sizedMulti is a Local with its own GetMulti that records how many
// keys each call asks for.
type sizedMulti struct {
	Local
	sizes *[]int
}

func (m sizedMulti) GetMulti(ctx context.Context, keys [][]byte, opt *store.GetOptions, into func(int, store.Item, []byte)) {
	*m.sizes = append(*m.sizes, len(keys))
	for i, k := range keys {
		if it, val, res := m.Get(k, opt, nil); res == store.Hit {
			into(i, it, val)
		}
	}
}

// TestMultiGetBatchFollowsValueSize: a retrieval's first GetMulti call
// asks for 32 keys while the values multi-gets returned are small, and
// for about batchBytes of them once they were large, so that a client
// pipelining gets of large values does not make the cache hold 32 at once.
func TestMultiGetBatchFollowsValueSize(t *testing.T) {
	st, err := store.New(store.Config{MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	_, addr := serve(t, Config{}, sizedMulti{Local{st}, &sizes})
	c := dial(t, addr)
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	get := func(prefix string, size int) int {
		t.Helper()
		var line strings.Builder
		line.WriteString("get")
		for i := range 40 {
			k := fmt.Sprintf("%s%d", prefix, i)
			st.Set([]byte(k), bytes.Repeat([]byte{'v'}, size), &store.SetOptions{})
			line.WriteString(" " + k)
		}
		sizes = sizes[:0]
		io.WriteString(c, line.String()+"\r\n")
		values := 0
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l == "END\r\n" {
				break
			}
			values++
			if _, err := r.Discard(size + 2); err != nil {
				t.Fatal(err)
			}
		}
		if values != 40 {
			t.Fatalf("%d values, want 40", values)
		}
		return sizes[0]
	}
	if n := get("small", 100); n != 32 {
		t.Errorf("first call for small values: %d keys, want 32", n)
	}
	for range 8 {
		get("large", 200<<10)
	}
	if n, most := get("large", 200<<10), batchBytes/(200<<10); n > most {
		t.Errorf("first call for 200 KB values, once seen: %d keys, want at most %d", n, most)
	}
}
