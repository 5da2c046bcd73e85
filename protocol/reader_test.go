package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll drains r, rendering each result as one line.
func readAll(r *Reader) []string {
	var out []string
	for {
		cmd, err := r.Next()
		var pe *Error
		switch {
		case errors.As(err, &pe):
			s := "error " + pe.Reply
			if pe.TooLarge {
				s += " key=" + string(pe.Key)
			}
			out = append(out, s)
		case err != nil:
			return append(out, "close "+err.Error())
		default:
			out = append(out, show(cmd))
		}
	}
}

func TestReader(t *testing.T) {
	big := strings.Repeat("z", 100)
	cases := map[string]struct {
		in   string
		max  int
		want []string
	}{
		"pipeline": {in: "get a\r\nset b 0 0 1\r\nx\r\nmn\r\n", want: []string{
			show(&Retrieval{Op: OpGet, Keys: keys("a")}),
			show(&Storage{Op: OpSet, Key: bs("b"), Data: bs("x")}),
			show(&Admin{Op: OpMetaNoop}),
			"close EOF"}},
		"bad chunk then rest": {in: "set a 0 0 1\r\nxy\r\nget a\r\n", want: []string{
			"error CLIENT_ERROR bad data chunk", "error ERROR",
			show(&Retrieval{Op: OpGet, Keys: keys("a")}), "close EOF"}},
		"too large swallowed": {in: "set a 0 0 101\r\n" + big + "z\r\nget a\r\n", max: 100, want: []string{
			"error SERVER_ERROR object too large for cache key=a",
			show(&Retrieval{Op: OpGet, Keys: keys("a")}), "close EOF"}},
		"ms too large": {in: "ms YQ== 101 b MA\r\n" + big + "z\r\nmn\r\n", max: 100, want: []string{
			"error SERVER_ERROR object too large for cache key=a",
			show(&Admin{Op: OpMetaNoop}), "close EOF"}},
		"ms error swallows": {in: "ms a 1 zz\r\nxy\r\nmn\r\n", want: []string{
			"error CLIENT_ERROR invalid flag", "error ERROR", show(&Admin{Op: OpMetaNoop}), "close EOF"}},
		"at max": {in: "set a 0 0 100\r\n" + big + "\r\n", max: 100, want: []string{
			show(&Storage{Op: OpSet, Key: bs("a"), Data: bs(big)}), "close EOF"}},
		"truncated": {in: "get a", want: []string{"close unexpected EOF"}},
		"long line": {in: strings.Repeat("x", 5000), want: []string{"close " + ErrLineTooLong.Error()}},
		"long get ok": {in: "get " + strings.Repeat("k ", 3000) + "\r\n", want: []string{
			show(&Retrieval{Op: OpGet, Keys: keys(strings.Split(strings.Repeat("k ", 3000), " ")[:3000]...)}), "close EOF"}},
		"http": {in: "GET / HTTP/1.1\r\n", want: []string{"close " + ErrHTTP.Error()}},
	}
	for name, tc := range cases {
		for _, mode := range []string{"whole", "bytes"} {
			t.Run(name+"/"+mode, func(t *testing.T) {
				var src io.Reader = strings.NewReader(tc.in)
				if mode == "bytes" {
					if len(tc.in) > 100000 {
						t.Skip("slow")
					}
					src = iotest.OneByteReader(src)
				}
				got := readAll(NewReader(src, tc.max))
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
			})
		}
	}
}

func TestReaderBuffered(t *testing.T) {
	r := NewReader(strings.NewReader("get a\r\nget b\r\n"), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 7 {
		t.Fatalf("Buffered = %d, want 7", r.Buffered())
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 0 {
		t.Fatalf("Buffered = %d, want 0", r.Buffered())
	}
}

// TestReaderSwallowBounded: a huge declared size is discarded as it
// arrives and never buffered.
func TestReaderSwallowBounded(t *testing.T) {
	const size = 64 << 20
	src := io.MultiReader(strings.NewReader("set a 0 0 67108864\r\n"),
		io.LimitReader(zeros{}, size), strings.NewReader("\r\nmn\r\n"))
	r := NewReader(src, 1<<20)
	if _, err := r.Next(); err == nil {
		t.Fatal("want too large")
	}
	cmd, err := r.Next()
	if err != nil || show(cmd) != show(&Admin{Op: OpMetaNoop}) {
		t.Fatalf("%v %v", show(cmd), err)
	}
	if len(r.buf) > readChunk {
		t.Fatalf("buffer grew to %d", len(r.buf))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// loop replays the same bytes forever.
type loop struct {
	data []byte
	off  int
}

func (l *loop) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

func TestReaderNoAllocs(t *testing.T) {
	in := []byte("get k1 k2 k3\r\nset key 0 0 100\r\n" + strings.Repeat("v", 100) + "\r\nmg key v k c\r\nincr n 1\r\n")
	r := NewReader(&loop{data: in}, 0)
	for range 100 {
		r.Next()
	}
	if a := testing.AllocsPerRun(1000, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Fatalf("%v allocs per command", a)
	}
}

func BenchmarkReaderGet(b *testing.B) {
	benchReader(b, []byte("get some:key:1234\r\n"))
}

func BenchmarkReaderSet100(b *testing.B) {
	benchReader(b, []byte("set some:key:1234 0 0 100\r\n"+strings.Repeat("v", 100)+"\r\n"))
}

func benchReader(b *testing.B, cmd []byte) {
	r := NewReader(&loop{data: bytes.Repeat(cmd, 64)}, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(cmd)))
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseGet(b *testing.B) {
	var p parser
	benchParse(b, &p, []byte("get some:key:1234\r\n"))
}

func BenchmarkParseSet100(b *testing.B) {
	var p parser
	benchParse(b, &p, []byte("set some:key:1234 0 0 100\r\n"+strings.Repeat("v", 100)+"\r\n"))
}

func benchParse(b *testing.B, p *parser, buf []byte) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := p.parse(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// againSource hands out its chunks one Read at a time, answering ErrAgain
// between them, as a non-blocking socket does between arrivals.
type againSource struct {
	chunks []string
	again  bool
}

func (s *againSource) Read(p []byte) (int, error) {
	if s.again = !s.again; s.again {
		return 0, ErrAgain
	}
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if s.chunks[0] = s.chunks[0][n:]; s.chunks[0] == "" {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

// TestReaderErrAgain checks that ErrAgain is passed on and not kept: the
// commands split across arrivals, including a swallowed oversized value,
// come out the same as from one blocking stream.
func TestReaderErrAgain(t *testing.T) {
	big := strings.Repeat("z", 101)
	src := &againSource{chunks: []string{"get", " a\r\nset b 0 0 1\r", "\nx", "\r\nset c 0 0 101\r\n", big[:50], big[50:] + "\r\n", "mn\r\n"}}
	r := NewReader(src, 100)
	var got []string
	agains := 0
	for {
		cmd, err := r.Next()
		var pe *Error
		switch {
		case err == ErrAgain:
			agains++
			continue
		case errors.As(err, &pe):
			got = append(got, "error "+pe.Reply)
			continue
		case err != nil:
			got = append(got, "close "+err.Error())
		default:
			got = append(got, show(cmd))
			continue
		}
		break
	}
	want := []string{
		show(&Retrieval{Op: OpGet, Keys: keys("a")}),
		show(&Storage{Op: OpSet, Key: bs("b"), Data: bs("x")}),
		"error SERVER_ERROR object too large for cache",
		show(&Admin{Op: OpMetaNoop}),
		"close EOF",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if agains < 7 {
		t.Errorf("%d ErrAgain, want one per arrival (7)", agains)
	}
}
