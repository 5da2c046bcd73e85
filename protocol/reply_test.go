package protocol

import (
	"fmt"
	"strings"
	"testing"
)

func TestReplies(t *testing.T) {
	cases := map[string]struct {
		got  []byte
		want string
	}{
		"value":       {AppendValue(nil, bs("a"), 5, bs("xy"), 0, false), "VALUE a 5 2\r\nxy\r\n"},
		"value cas":   {AppendValue(nil, bs("a"), 0, bs("x"), 18, true), "VALUE a 0 1 18\r\nx\r\n"},
		"end":         {AppendEnd(nil), "END\r\n"},
		"uint":        {AppendUint(nil, 18446744073709551615), "18446744073709551615\r\n"},
		"error":       {AppendError(nil, &Error{Reply: "ERROR"}), "ERROR\r\n"},
		"error quiet": {AppendError(nil, &Error{Reply: "ERROR", NoReply: true}), ""},
		"mg VA":       {AppendCRLF(AppendMetaKey(AppendMetaFlagUint(AppendMetaFlagInt(AppendMetaFlagInt(AppendMetaFlagInt(AppendMetaValueHeader(nil, 2), 't', -1), 'f', 0), 's', 2), 'c', 2), bs("a"), false)), "VA 2 t-1 f0 s2 c2 ka\r\n"},
		"ms b key":    {AppendCRLF(AppendMetaOpaque(AppendMetaFlagUint(AppendMetaKey(AppendMetaStatus(nil, MetaHD), bs("a"), true), 'c', 14), bs("99"))), "HD kYQ== b c14 O99\r\n"},
		"en opaque":   {AppendCRLF(AppendMetaKey(AppendMetaOpaque(AppendMetaStatus(nil, MetaEN), bs("123")), bs("a"), false)), "EN O123 ka\r\n"},
		"win":         {AppendCRLF(AppendMetaFlag(AppendMetaFlag(AppendMetaStatus(nil, MetaHD), 'X'), 'W')), "HD X W\r\n"},
		"me":          {AppendMetaDebug(nil, bs("a"), false, -1, 3, 7, true, 1, 66), "ME a exp=-1 la=3 cas=7 fetch=yes cls=1 size=66\r\n"},
		"me b":        {AppendMetaDebug(nil, bs("a"), true, 10, 0, 7, false, 1, 66), "ME YQ== exp=10 la=0 cas=7 fetch=no cls=1 size=66\r\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestRepliesNoAllocs(t *testing.T) {
	dst := make([]byte, 0, 1024)
	key, data := bs("some:key"), make([]byte, 100)
	if a := testing.AllocsPerRun(100, func() {
		d := AppendValue(dst[:0], key, 1, data, 99, true)
		d = AppendEnd(d)
		d = AppendMetaKey(AppendMetaValueHeader(d, 100), key, true)
		_ = AppendUint(d, 42)
	}); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}

func BenchmarkAppendValue(b *testing.B) {
	dst := make([]byte, 0, 1024)
	key, data := bs("some:key:1234"), make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendEnd(AppendValue(dst[:0], key, 0, data, 0, false))
	}
}

func ExampleParse() {
	buf := []byte("set k 0 0 2\r\nhi\r\nget k\r\n")
	for len(buf) > 0 {
		cmd, n, err := Parse(buf)
		if err != nil {
			fmt.Println(err)
			return
		}
		switch c := cmd.(type) {
		case *Storage:
			fmt.Printf("set %s = %s\n", c.Key, c.Data)
		case *Retrieval:
			fmt.Printf("get %s\n", c.Keys[0])
		}
		buf = buf[n:]
	}
	// Output:
	// set k = hi
	// get k
}

func ExampleReader() {
	var out []byte
	r := NewReader(strings.NewReader("get a\r\nbogus\r\n"), 0)
	for {
		cmd, err := r.Next()
		if pe, ok := err.(*Error); ok {
			out = AppendError(out, pe)
			continue
		} else if err != nil {
			break
		}
		if _, ok := cmd.(*Retrieval); ok {
			out = AppendEnd(out)
		}
	}
	fmt.Printf("%q\n", out)
	// Output: "END\r\nERROR\r\n"
}
