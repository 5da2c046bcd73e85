package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/server"
	"shoal/store"
)

var bg = context.Background()

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg Config
		ok  bool
	}{
		"minimal":          {Config{Addr: "127.0.0.1:11211"}, true},
		"full":             {Config{Addr: "h:1", Conns: 4, DialTimeout: time.Second, RequestTimeout: time.Second}, true},
		"no addr":          {Config{}, false},
		"no port":          {Config{Addr: "localhost"}, false},
		"negative conns":   {Config{Addr: "h:1", Conns: -1}, false},
		"negative timeout": {Config{Addr: "h:1", RequestTimeout: -1}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v is not ErrConfig", err)
			}
		})
	}
}

// TestRoundTrip runs the same table against shoal and memcached.
func TestRoundTrip(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: tg.start(t)})
			for _, tc := range roundTrips {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, c) })
			}
		})
	}
}

var roundTrips = []struct {
	name string
	run  func(t *testing.T, c *Client)
}{
	{"set get", func(t *testing.T, c *Client) {
		mustSet(t, c, "a", "hello", SetOptions{Flags: 42, TTL: 100})
		it := mustGet(t, c, "a", "hello")
		if it.Flags != 42 || it.TTL <= 0 || it.TTL > 100 || it.CAS == 0 {
			t.Fatalf("item %+v", it)
		}
	}},
	{"no ttl", func(t *testing.T, c *Client) {
		mustSet(t, c, "forever", "x", SetOptions{})
		if it := mustGet(t, c, "forever", "x"); it.TTL != -1 {
			t.Fatalf("ttl %d", it.TTL)
		}
	}},
	{"miss", func(t *testing.T, c *Client) {
		if _, found, err := c.Get(bg, []byte("nope"), GetOptions{}); found || err != nil {
			t.Fatalf("found %v err %v", found, err)
		}
	}},
	{"empty value", func(t *testing.T, c *Client) {
		mustSet(t, c, "empty", "", SetOptions{})
		mustGet(t, c, "empty", "")
	}},
	{"large value", func(t *testing.T, c *Client) {
		v := strings.Repeat("0123456789", 50_000)
		mustSet(t, c, "large", v, SetOptions{})
		mustGet(t, c, "large", v)
	}},
	{"binary key", func(t *testing.T, c *Client) {
		for _, k := range []string{"a key", "tab\tkey", "\x00\x01", "line\r\nbreak"} {
			mustSet(t, c, k, "v:"+k, SetOptions{})
		}
		for _, k := range []string{"a key", "tab\tkey", "\x00\x01", "line\r\nbreak"} {
			mustGet(t, c, k, "v:"+k)
		}
	}},
	{"bad key", func(t *testing.T, c *Client) {
		if _, _, err := c.Get(bg, nil, GetOptions{}); !errors.Is(err, ErrBadKey) {
			t.Fatalf("err %v", err)
		}
		if _, _, err := c.Set(bg, bytes.Repeat([]byte("k"), 251), nil, SetOptions{}); !errors.Is(err, ErrBadKey) {
			t.Fatalf("err %v", err)
		}
	}},
	{"cas", func(t *testing.T, c *Client) {
		cas := mustSet(t, c, "cas", "1", SetOptions{})
		if res, _, err := c.Set(bg, []byte("cas"), []byte("2"), SetOptions{CAS: cas + 1000}); res != Exists || err != nil {
			t.Fatalf("stale cas: %v %v", res, err)
		}
		if res, cas2, err := c.Set(bg, []byte("cas"), []byte("3"), SetOptions{CAS: cas}); res != OK || err != nil || cas2 == cas {
			t.Fatalf("cas: %v %d %v", res, cas2, err)
		}
		mustGet(t, c, "cas", "3")
		if res, _, err := c.Set(bg, []byte("cas-missing"), []byte("x"), SetOptions{CAS: 5}); res != NotFound || err != nil {
			t.Fatalf("missing: %v %v", res, err)
		}
	}},
	{"modes", func(t *testing.T, c *Client) {
		mustSet(t, c, "m", "b", SetOptions{})
		if res, _, _ := c.Set(bg, []byte("m"), []byte("x"), SetOptions{Mode: ModeAdd}); res != NotStored {
			t.Fatalf("add existing: %v", res)
		}
		if res, _, _ := c.Set(bg, []byte("m-missing"), []byte("x"), SetOptions{Mode: ModeReplace}); res != NotStored {
			t.Fatalf("replace missing: %v", res)
		}
		mustSet(t, c, "m", "c", SetOptions{Mode: ModeAppend})
		mustSet(t, c, "m", "a", SetOptions{Mode: ModePrepend})
		mustGet(t, c, "m", "abc")
	}},
	{"delete", func(t *testing.T, c *Client) {
		mustSet(t, c, "d", "x", SetOptions{})
		if res, err := c.Delete(bg, []byte("d"), DeleteOptions{}); res != OK || err != nil {
			t.Fatalf("delete: %v %v", res, err)
		}
		if res, err := c.Delete(bg, []byte("d"), DeleteOptions{}); res != NotFound || err != nil {
			t.Fatalf("delete again: %v %v", res, err)
		}
	}},
	{"arith", func(t *testing.T, c *Client) {
		mustSet(t, c, "n", "10", SetOptions{})
		if n, res, err := c.Arith(bg, []byte("n"), ArithOptions{Delta: 5}); n.Value != 15 || res != OK || err != nil {
			t.Fatalf("incr: %+v %v %v", n, res, err)
		}
		if n, res, err := c.Arith(bg, []byte("n"), ArithOptions{Decr: true}); n.Value != 14 || res != OK || err != nil || n.CAS == 0 {
			t.Fatalf("decr: %+v %v %v", n, res, err)
		}
		if _, res, err := c.Arith(bg, []byte("n-missing"), ArithOptions{}); res != NotFound || err != nil {
			t.Fatalf("missing: %v %v", res, err)
		}
		if n, res, err := c.Arith(bg, []byte("n-viv"), ArithOptions{Vivify: true, Initial: 7}); n.Value != 7 || res != OK || err != nil {
			t.Fatalf("vivify: %+v %v %v", n, res, err)
		}
		mustSet(t, c, "text", "abc", SetOptions{})
		if _, _, err := c.Arith(bg, []byte("text"), ArithOptions{}); !errors.Is(err, ErrReply) || !errors.Is(err, ErrNonNumeric) {
			t.Fatalf("non-numeric: %v", err)
		}
		mustGet(t, c, "n", "14") // the connection survived the error line
	}},
	{"arith vivify keeps its ttl", func(t *testing.T, c *Client) {
		// A counter Arith creates gets VivifyTTL even when Touch sets a
		// TTL for one that exists (N after T on the wire).
		n, res, err := c.Arith(bg, []byte("n-viv-ttl"), ArithOptions{Vivify: true, VivifyTTL: 30, Touch: true, TTL: 5000})
		if res != OK || err != nil || n.TTL <= 0 || n.TTL > 30 {
			t.Fatalf("vivify with touch: %+v %v %v, want a TTL of at most 30", n, res, err)
		}
		if n, _, err := c.Arith(bg, []byte("n-viv-ttl"), ArithOptions{Touch: true, TTL: 5000}); err != nil || n.TTL <= 30 {
			t.Fatalf("touch an existing counter: %+v %v", n, err)
		}
	}},
	{"touch", func(t *testing.T, c *Client) {
		mustSet(t, c, "gat", "x", SetOptions{TTL: 100})
		it, found, err := c.Get(bg, []byte("gat"), GetOptions{Touch: true, TTL: 5000})
		if !found || err != nil || it.TTL <= 100 {
			t.Fatalf("gat: %+v %v %v", it, found, err)
		}
	}},
}

func mustSet(t *testing.T, c *Client, key, val string, o SetOptions) uint64 {
	t.Helper()
	res, cas, err := c.Set(bg, []byte(key), []byte(val), o)
	if err != nil || res != OK {
		t.Fatalf("set %q: %v %v", key, res, err)
	}
	return cas
}

func mustGet(t *testing.T, c *Client, key, want string) Item {
	t.Helper()
	it, found, err := c.Get(bg, []byte(key), GetOptions{})
	if err != nil || !found || string(it.Value) != want {
		t.Fatalf("get %q: found %v err %v value %.40q", key, found, err, it.Value)
	}
	return it
}

// TestConcurrent: 50 goroutines x 200 operations share the pool; each
// checks what it reads.
func TestConcurrent(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: tg.start(t), Conns: 3, RequestTimeout: 10 * time.Second})
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for g := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					buf := make([]byte, 0, 64)
					for i := range 200 {
						key := fmt.Appendf(nil, "g%d:k%d", g, i%20)
						val := fmt.Appendf(nil, "value-%d-%d", g, i)
						if res, _, err := c.Set(bg, key, val, SetOptions{Flags: uint32(i)}); err != nil || res != OK {
							errs <- fmt.Errorf("set %s: %v %v", key, res, err)
							return
						}
						it, found, err := c.Get(bg, key, GetOptions{Buf: buf})
						if err != nil || !found || !bytes.Equal(it.Value, val) || it.Flags != uint32(i) {
							errs <- fmt.Errorf("get %s: %v %v %q", key, found, err, it.Value)
							return
						}
						buf = it.Value
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if s := c.Stats(); s.Requests != 50*200*2 || s.Failures != 0 || s.InFlight != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestGetMulti(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: tg.start(t)})
			keys := make([][]byte, 1000)
			for i := range keys {
				keys[i] = fmt.Appendf(nil, "multi %d", i) // spaces: sent base64
				if i%3 == 0 {
					mustSet(t, c, string(keys[i]), fmt.Sprint("v", i), SetOptions{Flags: uint32(i)})
				}
			}
			hits, err := c.GetMulti(bg, keys, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != 334 {
				t.Fatalf("%d hits", len(hits))
			}
			for j, h := range hits {
				if h.Index != 3*j || string(h.Value) != fmt.Sprint("v", h.Index) || h.Flags != uint32(h.Index) {
					t.Fatalf("hit %d: %+v %q", j, h, h.Value)
				}
			}
			// The connection is in step after the batch.
			mustGet(t, c, string(keys[3]), "v3")
		})
	}
}

// TestGetMultiAdmit: a value Admit refuses comes back Dropped, without
// its value; the others as usual, and the connection stays in step.
func TestGetMultiAdmit(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: tg.start(t)})
			mustSet(t, c, "a1", "small", SetOptions{Flags: 1})
			mustSet(t, c, "a2", strings.Repeat("L", 1000), SetOptions{Flags: 2})
			mustSet(t, c, "a4", "small too", SetOptions{Flags: 4})
			keys := [][]byte{[]byte("a1"), []byte("a2"), []byte("a3"), []byte("a4")}
			var asked []int
			admit := func(n int) bool { asked = append(asked, n); return n < 100 }
			hits, err := c.GetMultiWith(bg, keys, GetOptions{Admit: admit}, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%v", asked)
			for _, h := range hits {
				got += fmt.Sprintf(" %d:%q/%d/%v/%d", h.Index, h.Value, h.Flags, h.Dropped, h.Size)
			}
			if want := `[5 1000 9] 0:"small"/1/false/0 1:""/0/true/1000 3:"small too"/4/false/0`; got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
			mustGet(t, c, "a2", strings.Repeat("L", 1000))
		})
	}
}

func TestTouchMulti(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: tg.start(t)})
			mustSet(t, c, "t1", "v1", SetOptions{})
			mustSet(t, c, "t3", "v3", SetOptions{TTL: 5})
			keys := [][]byte{[]byte("t1"), []byte("t2"), []byte("t3")}
			hits, err := c.TouchMulti(bg, keys, 1000, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != 2 || hits[0].Index != 0 || hits[1].Index != 2 || string(hits[1].Value) != "v3" {
				t.Fatalf("hits %+v", hits)
			}
			for _, h := range hits {
				if h.TTL < 990 || h.TTL > 1000 {
					t.Errorf("key %d: TTL %d after the touch, want 1000", h.Index, h.TTL)
				}
			}
		})
	}
}

// TestReset: Reset breaks the pooled connections; the next request dials
// a new one and is served.
func TestReset(t *testing.T) {
	addr := servePeerPort(t, func(st *store.Store) server.Cache { return server.Local{Store: st} })
	c := newClient(t, Config{Addr: addr, Conns: 1})
	mustSet(t, c, "k", "v", SetOptions{})
	before := c.Stats().Redials
	c.Reset()
	mustGet(t, c, "k", "v")
	if got := c.Stats().Redials; got != before+1 {
		t.Fatalf("redials %d after Reset, want %d", got, before+1)
	}
}
