package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// binPkt builds a request packet.
func binPkt(op BinaryOp, key, extras, value string) []byte {
	b := make([]byte, BinaryHeaderLen)
	b[0] = BinaryRequestMagic
	b[1] = byte(op)
	binary.BigEndian.PutUint16(b[2:], uint16(len(key)))
	b[4] = byte(len(extras))
	binary.BigEndian.PutUint32(b[8:], uint32(len(key)+len(extras)+len(value)))
	binary.BigEndian.PutUint32(b[12:], 42)
	binary.BigEndian.PutUint64(b[16:], 9)
	return append(append(append(b, extras...), key...), value...)
}

func showBinary(b *Binary) string {
	s := fmt.Sprintf("op=%#02x key=%q extras=%q value=%q", byte(b.Op), b.Key, b.Extras, b.Value)
	for _, f := range []struct {
		on   bool
		name string
	}{{b.Invalid, "invalid"}, {b.Malformed, "malformed"}, {b.TooLarge, "toolarge"}, {b.NoMemory, "nomemory"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

func TestParseBinary(t *testing.T) {
	fl := "\x00\x00\x00\x05\x00\x00\x00\x64"
	cases := map[string]struct {
		in   []byte
		want string
		err  error
	}{
		"get":               {in: binPkt(BinGet, "k", "", ""), want: `op=0x00 key="k" extras="" value=""`},
		"set":               {in: binPkt(BinSet, "k", fl, "val"), want: `op=0x01 key="k" extras="\x00\x00\x00\x05\x00\x00\x00d" value="val"`},
		"noop":              {in: binPkt(BinNoop, "", "", ""), want: `op=0x0a key="" extras="" value=""`},
		"get with extras":   {in: binPkt(BinGet, "k", "abcd", ""), want: `op=0x00 key="k" extras="abcd" value="" invalid`},
		"set no extras":     {in: binPkt(BinSet, "k", "", "v"), want: `op=0x01 key="k" extras="" value="v" invalid`},
		"key too long":      {in: binPkt(BinGet, strings.Repeat("k", 251), "", ""), want: `op=0x00 key="` + strings.Repeat("k", 251) + `" extras="" value="" invalid`},
		"incr short extras": {in: binPkt(BinIncrement, "k", "12345678", ""), want: `op=0x05 key="k" extras="12345678" value="" invalid`},
		"unknown":           {in: binPkt(0x50, "k", "", "v"), want: `op=0x50 key="k" extras="" value="v"`},
		"short header":      {in: binPkt(BinNoop, "", "", "")[:23], err: ErrIncomplete},
		"short body":        {in: binPkt(BinGet, "key", "", "")[:26], err: ErrIncomplete},
		"bad magic":         {in: append([]byte{0x81}, binPkt(BinNoop, "", "", "")[1:]...), err: ErrBinaryMagic},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			b, n, err := ParseBinary(c.in)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if err != nil {
				return
			}
			if n != len(c.in) {
				t.Errorf("n = %d, want %d", n, len(c.in))
			}
			if got := showBinary(b); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if b.Opaque != 42 || b.CAS != 9 {
				t.Errorf("opaque %d cas %d", b.Opaque, b.CAS)
			}
		})
	}
}

func TestBinaryQuiet(t *testing.T) {
	for op, base := range map[BinaryOp]BinaryOp{BinGetQ: BinGet, BinGetKQ: BinGetK, BinSetQ: BinSet, BinDeleteQ: BinDelete,
		BinIncrQ: BinIncrement, BinQuitQ: BinQuit, BinFlushQ: BinFlush, BinGATKQ: BinGATK, BinAppendQ: BinAppend} {
		b := &Binary{Op: op}
		if !b.Quiet() || b.Base() != base {
			t.Errorf("%#x: quiet %v base %#x, want true %#x", op, b.Quiet(), b.Base(), base)
		}
	}
	for _, op := range []BinaryOp{BinGet, BinSet, BinNoop, BinStat, BinGAT} {
		if b := (&Binary{Op: op}); b.Quiet() || b.Base() != op {
			t.Errorf("%#x: quiet %v base %#x", op, b.Quiet(), b.Base())
		}
	}
}

// readBinary drains a Reader, one line per request.
func readBinary(r *Reader) []string {
	var out []string
	for {
		cmd, err := r.Next()
		var pe *Error
		if errors.As(err, &pe) {
			out = append(out, "error "+pe.Reply)
			continue
		}
		if err != nil {
			return append(out, "close "+err.Error())
		}
		b, ok := cmd.(*Binary)
		if !ok {
			out = append(out, fmt.Sprintf("text %T", cmd))
			continue
		}
		out = append(out, showBinary(b))
	}
}

func TestReaderBinary(t *testing.T) {
	fl := "\x00\x00\x00\x00\x00\x00\x00\x00"
	cat := func(ps ...[]byte) string {
		var s string
		for _, p := range ps {
			s += string(p)
		}
		return s
	}
	cases := map[string]struct {
		in      string
		binding Binding
		want    []string
	}{
		"negotiated": {in: cat(binPkt(BinSet, "k", fl, "v"), binPkt(BinGetQ, "k", "", ""), binPkt(BinNoop, "", "", "")), want: []string{
			`op=0x01 key="k" extras="\x00\x00\x00\x00\x00\x00\x00\x00" value="v"`,
			`op=0x09 key="k" extras="" value=""`,
			`op=0x0a key="" extras="" value=""`,
			"close EOF"}},
		"text stays text": {in: "mn\r\n\x80\r\n", want: []string{"text *protocol.Admin", "error ERROR", "close EOF"}},
		"binary then text closes": {in: cat(binPkt(BinNoop, "", "", "")) + strings.Repeat("version\r\n", 3), want: []string{
			`op=0x0a key="" extras="" value=""`, "close " + ErrBinaryMagic.Error()}},
		"binary only refuses text": {in: strings.Repeat("version\r\n", 3), binding: BindBinary, want: []string{"close " + ErrBinaryMagic.Error()}},
		"value over the limit is swallowed": {in: cat(binPkt(BinSet, "k", fl, strings.Repeat("v", 65)), binPkt(BinNoop, "", "", "")), want: []string{
			`op=0x01 key="k" extras="\x00\x00\x00\x00\x00\x00\x00\x00" value="" toolarge`,
			`op=0x0a key="" extras="" value=""`, "close EOF"}},
		"unknown opcode eats its extras and key again": {in: cat(binPkt(0x60, "k", "", "vv"), []byte("p"), binPkt(BinNoop, "", "", "")), want: []string{
			`op=0x60 key="k" extras="" value="vv"`, `op=0x0a key="" extras="" value=""`, "close EOF"}},
		"long body of a get is swallowed": {in: cat(binPkt(BinGet, "k", "", strings.Repeat("x", 20000)), binPkt(BinNoop, "", "", "")), want: []string{
			`op=0x00 key="" extras="" value="" invalid`, `op=0x0a key="" extras="" value=""`, "close EOF"}},
	}
	for name, c := range cases {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/onebyte=%v", name, oneByte), func(t *testing.T) {
				var src io.Reader = strings.NewReader(c.in)
				if oneByte {
					src = iotest.OneByteReader(src)
				}
				r := NewReader(src, 64)
				r.SetBinding(c.binding)
				got := readBinary(r)
				if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
				}
			})
		}
	}
}

func FuzzParseBinary(f *testing.F) {
	f.Add(binPkt(BinSet, "k", "\x00\x00\x00\x00\x00\x00\x00\x00", "v"))
	f.Add(binPkt(BinIncrement, "k", strings.Repeat("\x00", 20), ""))
	f.Add(binPkt(0x60, "k", "", "vv"))
	f.Fuzz(func(t *testing.T, in []byte) {
		b, n, err := ParseBinary(in)
		if err != nil {
			return
		}
		if n < BinaryHeaderLen || n > len(in) {
			t.Fatalf("n = %d of %d", n, len(in))
		}
		if !b.Malformed && len(b.Extras)+len(b.Key)+len(b.Value) != n-BinaryHeaderLen {
			t.Fatalf("parts do not add up to the body")
		}
		// The stream reader agrees with the pure parser, and ends.
		r := NewReader(iotest.OneByteReader(strings.NewReader(string(in))), 1<<20)
		r.SetBinding(BindBinary)
		for i := 0; i <= len(in); i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatal("reader did not end")
	})
}
