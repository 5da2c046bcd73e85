package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/store"
)

// metaClock is a store clock that moves only when a test says so, so TTLs
// and last-access times in replies are exact.
type metaClock struct{ t atomic.Int64 }

func (c *metaClock) Now() int64 { return c.t.Load() }

const metaT0 = 1_700_000_000

// metaStep sends req (with "\r\n" written as \r\n) and expects want, the
// whole reply to it. A step with advance moves the clock instead.
type metaStep struct {
	req, want string
	advance   int64
}

// metaCase is a sequence of steps on one fresh server. Cases that read
// TTLs or move the clock (timed) or where shoal knowingly differs
// (shoalOnly) are not replayed against memcached.
type metaCase struct {
	steps     []metaStep
	timed     bool
	shoalOnly string
}

// metaCases were checked against memcached 1.6.18; they cover what the
// conformance corpus does not. CAS values are normalised: c0 stays, any
// other c<digits> reads c*.
var metaCases = map[string]metaCase{
	"mg miss is EN with O and k in request order": {steps: []metaStep{
		{req: "mg nx\r\n", want: "EN\r\n"},
		{req: "mg nx k O1 v\r\n", want: "EN knx O1\r\n"},
		{req: "mg nx O1 k\r\n", want: "EN O1 knx\r\n"},
		{req: "mg nx q k v\r\n", want: ""},
	}},
	"mg hit returns flags in request order": {timed: true, steps: []metaStep{
		{req: "ms a 2 F5 T100\r\nhi\r\n", want: "HD\r\n"},
		{req: "mg a\r\n", want: "HD\r\n"},
		{req: "mg a v t f s c k O9 q\r\n", want: "VA 2 t100 f5 s2 c* ka O9\r\nhi\r\n"},
		{req: "mg a O9 k s f t\r\n", want: "HD O9 ka s2 f5 t100\r\n"},
		{req: "ms b 1\r\nx\r\n", want: "HD\r\n"},
		{req: "mg b t v\r\n", want: "VA 1 t-1\r\nx\r\n"},
	}},
	"mg T before t reports the new TTL": {timed: true, steps: []metaStep{
		{req: "ms a 1 T100\r\nx\r\n", want: "HD\r\n"},
		{req: "mg a T30 t\r\n", want: "HD t30\r\n"},
		{req: "mg a t\r\n", want: "HD t30\r\n"},
		{req: "mg a T0 t\r\n", want: "HD t-1\r\n"},
	}},
	"mg T counts as a touch": {steps: []metaStep{
		{req: "ms a 1\r\nx\r\nmg a T10\r\nmg nx T10\r\nmg a\r\nmg nx\r\n", want: "HD\r\nHD\r\nEN\r\nHD\r\nEN\r\n"},
	}},
	"mg h and l show the access before this one": {timed: true, steps: []metaStep{
		{req: "ms a 1\r\nx\r\n", want: "HD\r\n"},
		{advance: 5},
		{req: "mg a h l\r\n", want: "HD h0 l5\r\n"},
		{advance: 2},
		{req: "mg a l h\r\n", want: "HD l2 h1\r\n"},
	}},
	"mg u does not bump": {timed: true, steps: []metaStep{
		{req: "ms a 1\r\nx\r\n", want: "HD\r\n"},
		{advance: 3},
		{req: "mg a u h l\r\n", want: "HD h0 l3\r\n"},
		{req: "mg a h l\r\n", want: "HD h0 l3\r\n"},
		{req: "mg a h l\r\n", want: "HD h1 l0\r\n"},
	}},
	"mg N vivifies and hands out one win": {timed: true, steps: []metaStep{
		{req: "mg v N30 v c t s k\r\n", want: "VA 0 c* t30 s0 kv W\r\n\r\n"},
		{req: "mg v N30 v t\r\n", want: "VA 0 t30 Z\r\n\r\n"},
		{req: "mg v t q\r\n", want: "HD t30 Z\r\n"},
		{req: "ms v 3 T100\r\nnew\r\n", want: "HD\r\n"},
		{req: "mg v v t\r\n", want: "VA 3 t100\r\nnew\r\n"},
	}},
	"mg R wins once below the threshold": {timed: true, steps: []metaStep{
		{req: "ms r 1 T100\r\nx\r\n", want: "HD\r\n"},
		{req: "mg r R50 t\r\n", want: "HD t100\r\n"},
		{req: "mg r R0 t\r\n", want: "HD t100\r\n"},
		{req: "mg r R-1 t\r\n", want: "HD t100\r\n"},
		{req: "mg r R200 t\r\n", want: "HD t100 W\r\n"},
		{req: "mg r R200 t\r\n", want: "HD t100 Z\r\n"},
		{req: "ms n 1\r\nx\r\n", want: "HD\r\n"},
		{req: "mg n R200\r\n", want: "HD\r\n"},
	}},
	"md I marks stale and the next reader wins": {timed: true, steps: []metaStep{
		{req: "ms d 1 T100\r\n1\r\n", want: "HD\r\n"},
		{req: "md d I T30 k\r\n", want: "HD kd\r\n"},
		{req: "mg d v t c\r\n", want: "VA 1 t30 c* X W\r\n1\r\n"},
		{req: "mg d v t\r\n", want: "VA 1 t30 Z X\r\n1\r\n"},
		{req: "md d I q\r\n", want: ""},
		{req: "mg d t\r\n", want: "HD t30 X W\r\n"},
		{req: "md d\r\n", want: "HD\r\n"},
		{req: "md d\r\n", want: "NF\r\n"},
	}},
	"ms I with an older CAS stores a stale value": {timed: true, steps: []metaStep{
		{req: "ms c 2 T100 F7\r\nhi\r\n", want: "HD\r\n"},
		{req: "ms c 2 T100 F7\r\nhi\r\n", want: "HD\r\n"},
		{req: "ms c 1 I C1 T5 F3\r\nx\r\n", want: "HD\r\n"},
		{req: "mg c v t f\r\n", want: "VA 1 t100 f3 X W\r\nx\r\n"},
		{req: "mg c v\r\n", want: "VA 1 Z X\r\nx\r\n"},
		{req: "ms c 1 I C999999 T5\r\nx\r\n", want: "EX\r\n"},
		{req: "ms c 1 C1 T5\r\nx\r\n", want: "EX\r\n"},
		{req: "ms c 1 I C0\r\ny\r\n", want: "EX\r\n"},
	}},
	"ms modes": {steps: []metaStep{
		{req: "ms nx 2 MA O1 k\r\nyo\r\n", want: "NS O1 knx\r\n"},
		{req: "ms nx 2 MP\r\nyo\r\n", want: "NS\r\n"},
		{req: "ms nx 2 MR c\r\nyo\r\n", want: "NS c0\r\n"},
		{req: "ms b 2 MS\r\nhi\r\n", want: "HD\r\n"},
		{req: "ms b 2 ME c\r\nyo\r\n", want: "NS c0\r\n"},
		{req: "ms b 1 MA\r\n+\r\n", want: "HD\r\n"},
		{req: "ms b 1 MP\r\n-\r\n", want: "HD\r\n"},
		{req: "ms b 1 MR q\r\nr\r\n", want: ""},
		{req: "mg b v\r\n", want: "VA 1\r\nr\r\n"},
		{req: "ms e 1 ME c k\r\nx\r\n", want: "HD c* ke\r\n"},
	}},
	"ms q hides only HD": {steps: []metaStep{
		{req: "ms a 1 q\r\nx\r\nms a 1 ME q\r\nx\r\nms a 1 MA q O9 k c\r\ny\r\n", want: "NS\r\n"},
		{req: "mg a v\r\n", want: "VA 2\r\nxy\r\n"},
	}},
	"ms CAS": {steps: []metaStep{
		{req: "ms a 1\r\nx\r\n", want: "HD\r\n"},
		{req: "ms a 1 C999999 c k O5\r\nz\r\n", want: "EX c0 ka O5\r\n"},
		{req: "ms a 1 C0\r\nz\r\n", want: "EX\r\n"},
		{req: "ms a 1 MR C0\r\nz\r\n", want: "EX\r\n"},
		{req: "ms nx 1 C0\r\nz\r\n", want: "NF\r\n"},
		{req: "ms nx 1 C5\r\nz\r\n", want: "NF\r\n"},
		{req: "ms a 1 MA C999999\r\nz\r\n", want: "EX\r\n"},
		{req: "ms a 1 MA C0\r\nz\r\n", want: "HD\r\n"},
		{req: "ms a 1 ME C1\r\nz\r\n", want: "NS\r\n"},
		{req: "mg a v\r\n", want: "VA 2\r\nxz\r\n"},
	}},
	"ms b key": {steps: []metaStep{
		{req: "ms YWJj 2 b c k\r\nhi\r\n", want: "HD c* kYWJj b\r\n"},
		{req: "mg YWJj b k v\r\n", want: "VA 2 kYWJj b\r\nhi\r\n"},
		{req: "mg enc= b k O1\r\n", want: "EN kenc= b O1\r\n"},
		{req: "get abc\r\n", want: "VALUE abc 0 2\r\nhi\r\nEND\r\n"},
		{req: "md YWJj b k q\r\nmd YWJj b k\r\n", want: "NF kYWJj b\r\n"},
	}},
	"mg k of a key stored with b": {steps: []metaStep{
		{req: "ms YWJj 2 b\r\nhi\r\n", want: "HD\r\n"},
		{req: "mg abc k v\r\n", want: "VA 2 kYWJj b\r\nhi\r\n"},
		{req: "ms YWJj 2 b MA\r\nho\r\n", want: "HD\r\n"},
		{req: "mg YWJj b k v\r\n", want: "VA 4 kabc\r\nhiho\r\n"},
	}},
	"md": {steps: []metaStep{
		{req: "ms d 1\r\n1\r\n", want: "HD\r\n"},
		{req: "md d q\r\nmd d q\r\n", want: "NF\r\n"},
		{req: "md d O1 k c t\r\n", want: "NF O1 kd\r\n"},
		{req: "ms d 1\r\n1\r\n", want: "HD\r\n"},
		{req: "md d C999999 O2 k q\r\n", want: "EX O2 kd\r\n"},
		{req: "md d C0\r\n", want: "EX\r\n"},
		{req: "md nx C0\r\n", want: "NF\r\n"},
		{req: "md d T30\r\n", want: "HD\r\n"},
		{req: "mg d\r\n", want: "EN\r\n"},
	}},
	"ma": {steps: []metaStep{
		{req: "ma n\r\nma n q\r\nma n O1 k v q\r\n", want: "NF\r\nNF\r\nNF O1 kn\r\n"},
		{req: "ma n N0 J10 v\r\n", want: "VA 2\r\n10\r\n"},
		{req: "ma n v q\r\n", want: ""},
		{req: "ma n v t c N30 J5 k O1\r\n", want: "VA 2 t-1 c* kn O1\r\n12\r\n"},
		{req: "ma n v MD D3\r\n", want: "VA 1\r\n9\r\n"},
		{req: "ma n M- D100 v\r\n", want: "VA 1\r\n0\r\n"},
		{req: "ma n M+ D18446744073709551615 v\r\n", want: "VA 20\r\n18446744073709551615\r\n"},
		{req: "ma n MI v\r\n", want: "VA 1\r\n0\r\n"},
		{req: "ma n v C999999\r\nma n C999999 q\r\n", want: "EX\r\nEX\r\n"},
		{req: "ma n C0\r\n", want: "HD\r\n"},
		{req: "ms s 1\r\nx\r\n", want: "HD\r\n"},
		{req: "ma s\r\nma s q\r\n", want: "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n" +
			"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
	}},
	"ma q answers a vivified item": {steps: []metaStep{
		{req: "ma n N0 J10 q\r\n", want: "HD\r\n"},
		{req: "ma n q\r\n", want: ""},
	}},
	"ma T and t": {timed: true, steps: []metaStep{
		{req: "ma n N30 J1 t v\r\n", want: "VA 1 t30\r\n1\r\n"},
		{req: "ma n T100 t\r\n", want: "HD t100\r\n"},
		{req: "mg n t v\r\n", want: "VA 1 t100\r\n2\r\n"},
		{req: "ma n T0 t\r\n", want: "HD t-1\r\n"},
	}},
	"me": {timed: true, shoalOnly: "cls and size are shoal's", steps: []metaStep{
		{req: "me nx\r\n", want: "EN\r\n"},
		{req: "ms a 1 T30\r\nb\r\n", want: "HD\r\n"},
		{advance: 2},
		{req: "me a\r\n", want: "ME a exp=-28 la=2 cas=* fetch=no cls=1 size=34\r\n"},
		{req: "mg a\r\n", want: "HD\r\n"},
		{req: "me a\r\n", want: "ME a exp=-28 la=0 cas=* fetch=yes cls=1 size=34\r\n"},
		{req: "ms YWJj 1\r\nb\r\n", want: "HD\r\n"},
		{req: "me YWJj\r\n", want: "ME YWJj exp=-1 la=0 cas=* fetch=no cls=1 size=37\r\n"},
		{req: "ms abc 1\r\nb\r\n", want: "HD\r\n"},
		{req: "me YWJj b\r\n", want: "ME abc exp=-1 la=0 cas=* fetch=no cls=1 size=36\r\n"},
		{req: "ms ZGVm 1 b\r\nb\r\n", want: "HD\r\n"},
		{req: "me def\r\n", want: "ME ZGVm exp=-1 la=0 cas=* fetch=no cls=1 size=36\r\n"},
	}},
}

func TestMeta(t *testing.T) {
	_, err := exec.LookPath("memcached")
	haveMemcached := err == nil
	for name, tc := range metaCases {
		t.Run("shoal/"+name, func(t *testing.T) {
			t.Parallel()
			clk := &metaClock{}
			clk.t.Store(metaT0)
			addr := startServer(t, store.Config{Clock: clk}, Config{})
			runMetaCase(t, addr, tc, clk)
		})
		t.Run("memcached/"+name, func(t *testing.T) {
			switch {
			case !haveMemcached:
				t.Skip("memcached not on PATH")
			case tc.timed:
				t.Skip("reads TTLs or moves the clock")
			case tc.shoalOnly != "":
				t.Skip("shoal differs: " + tc.shoalOnly)
			}
			t.Parallel()
			runMetaCase(t, startMemcached(t), tc, nil)
		})
	}
}

var casFlag = regexp.MustCompile(`( c|cas=)[1-9][0-9]*`)

func runMetaCase(t *testing.T, addr string, tc metaCase, clk *metaClock) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(nc)
	for i, st := range tc.steps {
		if st.req == "" {
			clk.t.Add(st.advance)
			continue
		}
		got := metaExchange(t, nc, r, st.req)
		got = casFlag.ReplaceAllString(got, "${1}*")
		if got != st.want {
			t.Errorf("step %d: %q\n got %q\nwant %q", i, st.req, got, st.want)
		}
	}
}

// metaExchange sends req followed by mn and returns everything before the
// MN that answers it.
func metaExchange(t *testing.T, nc net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	if _, err := io.WriteString(nc, req+"mn\r\n"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%q: %v after %q", req, err, buf.String())
		}
		if line == "MN\r\n" {
			return buf.String()
		}
		buf.WriteString(line)
	}
}

// TestMetaStats checks that meta commands feed the counters memcached
// feeds: mg as a get (a touch when T hits), ms as a set and a CAS, md as a
// delete, ma as incr or decr, and only me as cmd_meta.
func TestMetaStats(t *testing.T) {
	addr := startShoal(t)
	nc := dial(t, addr)
	r := bufio.NewReader(nc)
	metaExchange(t, nc, r, "ms a 1\r\n1\r\nmg a\r\nmg zz\r\nmg a T10\r\nmg zz T10\r\nmd a\r\nmd a\r\nme a\r\n"+
		"ms a 1 C5\r\n1\r\nms a 1\r\n1\r\nms a 1 C99\r\n1\r\nms a 1 C0\r\n1\r\n"+
		"ma a\r\nma zz\r\nma a MD\r\nma zz MD\r\nmd a C99\r\n")
	_, got := statNames(t, addr, "stats")
	want := map[string]string{
		"cmd_get": "3", "get_hits": "1", "get_misses": "2",
		"cmd_touch": "1", "touch_hits": "1", "touch_misses": "0",
		"cmd_set": "5", "cas_misses": "1", "cas_hits": "0", "cas_badval": "2",
		"delete_hits": "1", "delete_misses": "2",
		"incr_hits": "1", "incr_misses": "1", "decr_hits": "1", "decr_misses": "1",
		"cmd_meta": "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
}

// TestMetaGetLargeValue checks that a value larger than the reply buffer
// threshold comes back whole.
func TestMetaGetLargeValue(t *testing.T) {
	addr := startShoal(t)
	nc := dial(t, addr)
	r := bufio.NewReader(nc)
	val := strings.Repeat("x", 200<<10)
	if got := metaExchange(t, nc, r, "ms big 204800 T0\r\n"+val+"\r\n"); got != "HD\r\n" {
		t.Fatalf("ms: %q", got)
	}
	want := "VA 204800 s204800\r\n" + val + "\r\n"
	if got := metaExchange(t, nc, r, "mg big v s\r\nmg big v s\r\n"); got != want+want {
		t.Fatalf("mg: got %d bytes, want %d", len(got), 2*len(want))
	}
}
