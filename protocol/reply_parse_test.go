package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type replyCase struct {
	in      string
	n       int // bytes consumed; 0 means len(in)
	status  ReplyStatus
	flags   string // "code=value" joined by spaces
	opaque  string // "-" when absent
	value   string
	message string
	err     error
}

var replyCases = map[string]replyCase{
	"hd":           {in: "HD\r\n", status: StatusHD, opaque: "-"},
	"hd flags":     {in: "HD c14 O99 kYQ== b\r\n", status: StatusHD, flags: "c=14 O=99 k=YQ== b=", opaque: "99"},
	"va":           {in: "VA 2 t-1 f0 c2 O7\r\nhi\r\n", status: StatusVA, flags: "t=-1 f=0 c=2 O=7", opaque: "7", value: "hi"},
	"va empty":     {in: "VA 0\r\n\r\n", status: StatusVA, opaque: "-"},
	"va crlf data": {in: "VA 4 O1\r\n\r\n\r\n\r\n", status: StatusVA, flags: "O=1", opaque: "1", value: "\r\n\r\n"},
	"va then more": {in: "VA 1\r\nx\r\nHD\r\n", n: 9, status: StatusVA, opaque: "-", value: "x"},
	"en":           {in: "EN O1\r\n", status: StatusEN, flags: "O=1", opaque: "1"},
	"nf":           {in: "NF\r\n", status: StatusNF, opaque: "-"},
	"ns":           {in: "NS O2 c0\r\n", status: StatusNS, flags: "O=2 c=0", opaque: "2"},
	"ex":           {in: "EX\r\n", status: StatusEX, opaque: "-"},
	"mn":           {in: "MN\r\n", status: StatusMN, opaque: "-"},
	"win stale":    {in: "HD X W Z\r\n", status: StatusHD, flags: "X= W= Z=", opaque: "-"},
	"bare lf":      {in: "HD O3\n", status: StatusHD, flags: "O=3", opaque: "3"},
	"double space": {in: "HD  O3\r\n", status: StatusHD, flags: "O=3", opaque: "3"},
	"me":           {in: "ME a exp=-1 la=3\r\n", status: StatusME, opaque: "-", message: "a exp=-1 la=3"},
	"error":        {in: "ERROR\r\n", status: StatusError, opaque: "-"},
	"client error": {in: "CLIENT_ERROR bad data chunk\r\n", status: StatusClientError, opaque: "-", message: "bad data chunk"},
	"server error": {in: "SERVER_ERROR out of memory\r\n", status: StatusServerError, opaque: "-", message: "out of memory"},

	"incomplete line":  {in: "HD O1", err: ErrIncomplete},
	"incomplete value": {in: "VA 5\r\nhel", err: ErrIncomplete},
	"no crlf":          {in: "VA 2\r\nhixx", err: ErrBadReply},
	"bad size":         {in: "VA x\r\n", err: ErrBadReply},
	"negative size":    {in: "VA -1\r\n", err: ErrBadReply},
	"too large":        {in: "VA 2000\r\n", err: ErrValueTooLarge},
	"classic":          {in: "STORED\r\n", err: ErrBadReply},
	"empty line":       {in: "\r\n", err: ErrBadReply},
}

func flagString(fs []MetaFlag) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(f.Code)
		b.WriteByte('=')
		b.Write(f.Value)
	}
	return b.String()
}

func checkReply(t *testing.T, tc replyCase, r *Reply) {
	t.Helper()
	opaque := "-"
	if r.HasOpaque {
		opaque = string(r.Opaque)
	}
	if r.Status != tc.status || flagString(r.Flags) != tc.flags || opaque != tc.opaque ||
		string(r.Value) != tc.value || string(r.Message) != tc.message {
		t.Fatalf("got %v flags %q opaque %q value %q msg %q", r.Status, flagString(r.Flags), opaque, r.Value, r.Message)
	}
}

func TestParseReply(t *testing.T) {
	for name, tc := range replyCases {
		t.Run(name, func(t *testing.T) {
			var r Reply
			n, err := ParseReply([]byte(tc.in), &r, 1024)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			want := tc.n
			if want == 0 {
				want = len(tc.in)
			}
			if n != want {
				t.Fatalf("n = %d, want %d", n, want)
			}
			checkReply(t, tc, &r)
		})
	}
}

// TestReplyReader feeds every complete case through a stream one byte at a
// time, so every reply is split at every position.
func TestReplyReader(t *testing.T) {
	var names []string
	var in bytes.Buffer
	for name, tc := range replyCases {
		if tc.err == nil && tc.n == 0 {
			names = append(names, name)
			in.WriteString(tc.in)
		}
	}
	rr := NewReplyReader(iotest.OneByteReader(&in), 1024)
	for _, name := range names {
		r, err := rr.Next()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Run(name, func(t *testing.T) { checkReply(t, replyCases[name], r) })
	}
	if _, err := rr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReplyReaderErrors(t *testing.T) {
	cases := map[string]struct {
		in  string
		err error
	}{
		"eof inside value": {"VA 5\r\nhe", io.ErrUnexpectedEOF},
		"eof inside line":  {"HD", io.ErrUnexpectedEOF},
		"garbage":          {"hello\r\n", ErrBadReply},
		"endless line":     {strings.Repeat("x", maxReplyLine+10), ErrBadReply},
		"too large":        {"VA 2000\r\n", ErrValueTooLarge},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rr := NewReplyReader(strings.NewReader(tc.in), 1024)
			if _, err := rr.Next(); !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

func TestReplyReaderLargeValue(t *testing.T) {
	val := strings.Repeat("v", 100_000) // larger than the initial buffer
	rr := NewReplyReader(strings.NewReader("VA 100000 O1\r\n"+val+"\r\nMN\r\n"), 0)
	r, err := rr.Next()
	if err != nil || string(r.Value) != val {
		t.Fatalf("err %v, len %d", err, len(r.Value))
	}
	if r, err = rr.Next(); err != nil || r.Status != StatusMN {
		t.Fatalf("%v %v", r, err)
	}
}

func TestReplyNumbers(t *testing.T) {
	var r Reply
	if _, err := ParseReply([]byte("HD c18446744073709551615 t-1 s5 x-0 yz f99999999999999999999\r\n"), &r, 0); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Uint('c'); !ok || v != 18446744073709551615 {
		t.Errorf("c = %d %v", v, ok)
	}
	if v, ok := r.Int('t'); !ok || v != -1 {
		t.Errorf("t = %d %v", v, ok)
	}
	if v, ok := r.Int('s'); !ok || v != 5 {
		t.Errorf("s = %d %v", v, ok)
	}
	if _, ok := r.Uint('y'); ok {
		t.Error("y parsed")
	}
	if _, ok := r.Uint('f'); ok {
		t.Error("overflow parsed")
	}
	if _, ok := r.Uint('q'); ok {
		t.Error("absent flag parsed")
	}
}

func TestReplyReaderNoAllocs(t *testing.T) {
	one := "VA 5 f1 c99 t-1 O12345\r\nhello\r\nHD c3 O12346\r\nEN O12347\r\n"
	stream := strings.NewReader("")
	rr := NewReplyReader(stream, 0)
	if a := testing.AllocsPerRun(200, func() {
		stream.Reset(one)
		for range 3 {
			if _, err := rr.Next(); err != nil {
				t.Fatal(err)
			}
		}
	}); a != 0 {
		t.Fatalf("%v allocs per run", a)
	}
}

// TestMetaRequests: what a client of another node writes with the typed
// commands' AppendTo, byte for byte, and the server's parser reads it back.
func TestMetaRequests(t *testing.T) {
	cases := map[string]struct {
		got  []byte
		want string
	}{
		"mg":        {(&MetaGet{Key: bs("a"), MetaOptions: MetaOptions{ReturnValue: true, HasOpaque: true, Opaque: bs("7")}}).AppendTo(nil), "mg a v O7\r\n"},
		"mg binary": {(&MetaGet{Key: bs("a b"), MetaOptions: MetaOptions{Base64: true}}).AppendTo(nil), "mg YSBi b\r\n"},
		"ms":        {(&MetaSet{Key: bs("k"), Data: bs("hello"), MetaOptions: MetaOptions{HasClientFlags: true, ClientFlags: 3}}).AppendTo(nil), "ms k 5 F3\r\nhello\r\n"},
		"ms binary": {(&MetaSet{Key: bs("\x00"), Data: bs("hello"), MetaOptions: MetaOptions{Base64: true}}).AppendTo(nil), "ms AA== 5 b\r\nhello\r\n"},
		"md":        {(&MetaDelete{Key: bs("k")}).AppendTo(nil), "md k\r\n"},
		"ma":        {(&MetaArith{Key: bs("k"), MetaOptions: MetaOptions{Delta: 1, ReturnValue: true}}).AppendTo(nil), "ma k v\r\n"},
		"mn":        {AppendMetaNoopRequest(nil), "mn\r\n"},
		"utf8 raw":  {(&MetaGet{Key: bs("clé")}).AppendTo(nil), "mg clé\r\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
			// What the client encodes, the server's parser reads back.
			if cmd, _, err := Parse(tc.got); err != nil {
				t.Fatalf("Parse: %v %v", cmd, err)
			}
		})
	}
}

func TestMetaKeyValid(t *testing.T) {
	cases := map[string]struct {
		key  string
		want bool
	}{
		"plain":          {"user:1", true},
		"empty":          {"", false},
		"250":            {strings.Repeat("k", 250), true},
		"251":            {strings.Repeat("k", 251), false},
		"binary 186":     {strings.Repeat(" ", 186), true},  // 248 bytes encoded
		"binary too big": {strings.Repeat(" ", 187), false}, // 252 bytes encoded
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := MetaKeyValid([]byte(tc.key)); got != tc.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	for _, tc := range replyCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var r Reply
		n, err := ParseReply(in, &r, 1<<20)
		switch {
		case err == nil:
			if n <= 0 || n > len(in) || r.Status == 0 {
				t.Fatalf("n = %d of %d, status %v", n, len(in), r.Status)
			}
			if r.Status == StatusVA && len(r.Value) > n {
				t.Fatalf("value longer than consumed")
			}
		case n != 0:
			t.Fatalf("error %v with n = %d", err, n)
		}
		// The streaming reader agrees with the pure parser on the first reply.
		rr := NewReplyReader(iotest.HalfReader(bytes.NewReader(in)), 1<<20)
		r2, err2 := rr.Next()
		if err == nil {
			if err2 != nil || r2.Status != r.Status || !bytes.Equal(r2.Value, r.Value) || len(r2.Flags) != len(r.Flags) {
				t.Fatalf("reader: %v %v, parse: %v", r2, err2, r.Status)
			}
		} else if err2 == nil {
			t.Fatalf("reader accepted what Parse refused (%v)", err)
		}
	})
}

func TestMetaTTL(t *testing.T) {
	for name, tc := range map[string]struct{ exptime, want int64 }{
		"never":           {0, 0},
		"already expired": {1, -1},
		"absolute":        {1_900_000_000, 1_900_000_000},
	} {
		t.Run(name, func(t *testing.T) {
			if got := MetaTTL(tc.exptime); got != tc.want {
				t.Fatalf("MetaTTL(%d) = %d, want %d", tc.exptime, got, tc.want)
			}
		})
	}
}
