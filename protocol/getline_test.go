package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// longGet is a get line of n keys k0..k<n-1> and the line after it.
func longGet(op string, n int, bad int) string {
	var b strings.Builder
	b.WriteString(op)
	for i := range n {
		if i == bad {
			b.WriteString(" " + strings.Repeat("b", KeyMaxLength+1))
			continue
		}
		fmt.Fprintf(&b, " k%d", i)
	}
	b.WriteString("\r\nget after\r\n")
	return b.String()
}

// TestReaderLongGetLine: a get line far longer than the buffer comes out
// in parts, every key once and in order, END only after the last, and the
// Reader never holds more than one buffer.
func TestReaderLongGetLine(t *testing.T) {
	for _, mode := range []string{"whole", "chunks"} {
		t.Run(mode, func(t *testing.T) {
			var src io.Reader = strings.NewReader(longGet("gets", 200_000, -1))
			if mode == "chunks" {
				src = iotest.HalfReader(src)
			}
			r := NewReader(src, 0)
			next, parts := 0, 0
			for {
				cmd, err := r.Next()
				if err != nil {
					t.Fatalf("after %d keys: %v", next, err)
				}
				if r.Held() > BufferSize {
					t.Fatalf("holds %d bytes", r.Held())
				}
				g := cmd.(*Retrieval)
				if g.Op != OpGets || g.BadKey {
					t.Fatalf("part %d: %+v", parts, g)
				}
				for _, k := range g.Keys {
					if want := fmt.Sprintf("k%d", next); string(k) != want {
						t.Fatalf("key %d is %q, want %q", next, k, want)
					}
					next++
				}
				parts++
				if !g.More {
					break
				}
			}
			if next != 200_000 || parts < 2 {
				t.Fatalf("%d keys in %d parts", next, parts)
			}
			cmd, err := r.Next()
			if g, ok := cmd.(*Retrieval); err != nil || !ok || string(g.Keys[0]) != "after" || g.More {
				t.Fatalf("next command %+v %v", cmd, err)
			}
		})
	}
}

// TestReaderLongGetLineBadKey: a key over 250 bytes deep in a long line
// ends it with BadKey; the rest of the line is skipped and the next
// command is read as usual.
func TestReaderLongGetLineBadKey(t *testing.T) {
	r := NewReader(strings.NewReader(longGet("get", 50_000, 30_000)), 0)
	keys := 0
	for {
		cmd, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		g := cmd.(*Retrieval)
		keys += len(g.Keys)
		if g.BadKey {
			break
		}
		if !g.More {
			t.Fatalf("line ended without BadKey after %d keys", keys)
		}
	}
	if keys > 30_000 {
		t.Fatalf("%d keys before the bad one, want at most 30000", keys)
	}
	cmd, err := r.Next()
	if g, ok := cmd.(*Retrieval); err != nil || !ok || string(g.Keys[0]) != "after" {
		t.Fatalf("next command %+v %v", cmd, err)
	}
}

// budget grants up to limit bytes.
type budget struct{ used, limit int }

func (b *budget) Grow(n int) bool {
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}
func (b *budget) Release(n int) { b.used -= n }

// TestReaderBudget: a data block beyond what the Budget grants is refused
// as memcached refuses an item it has no memory for, swallowed, and the
// connection goes on; a granted one is given back once consumed.
func TestReaderBudget(t *testing.T) {
	big := strings.Repeat("v", 100_000)
	in := "set a 0 0 100000\r\n" + big + "\r\n" + "ms b 100000 q\r\n" + big + "\r\n" + "set c 0 0 1\r\nx\r\n"
	b := &budget{limit: 50_000}
	r := NewReader(iotest.HalfReader(strings.NewReader(in)), 0)
	r.UseMemory(nil, b)
	for _, want := range []string{"a", "b"} {
		_, err := r.Next()
		var pe *Error
		if !errors.As(err, &pe) || !pe.NoMemory || pe.Reply != replyNoMemory || string(pe.Key) != want {
			t.Fatalf("%s: %v", want, err)
		}
		if r.Held() > BufferSize {
			t.Fatalf("holds %d bytes after refusing", r.Held())
		}
	}
	if cmd, err := r.Next(); err != nil || string(cmd.(*Storage).Key) != "c" {
		t.Fatalf("after: %v %v", cmd, err)
	}

	b = &budget{limit: 1 << 20}
	r = NewReader(strings.NewReader(in), 0)
	r.UseMemory(nil, b)
	cmd, err := r.Next()
	if err != nil || !bytes.Equal(cmd.(*Storage).Data, []byte(big)) || b.used == 0 {
		t.Fatalf("granted: %v, used %d", err, b.used)
	}
	r.Next()
	r.Next()
	if b.used != 0 || r.Held() > BufferSize {
		t.Fatalf("budget still holds %d, reader %d bytes", b.used, r.Held())
	}
}

// pool counts buffers lent and returned.
type pool struct{ out int }

func (p *pool) Get() []byte  { p.out++; return make([]byte, BufferSize) }
func (p *pool) Put(b []byte) { p.out-- }

// TestReaderRelease: a Reader with nothing buffered gives its buffer back;
// an unfinished line moves to a buffer of its size.
func TestReaderRelease(t *testing.T) {
	p := &pool{}
	pr, pw := io.Pipe()
	r := NewReader(pr, 0)
	r.UseMemory(p, nil)
	go pw.Write([]byte("get a\r\nget b"))
	if cmd, err := r.Next(); err != nil || string(cmd.(*Retrieval).Keys[0]) != "a" {
		t.Fatal(cmd, err)
	}
	r.Release()
	if p.out != 0 || r.Held() != len("get b") {
		t.Fatalf("lent %d, holds %d", p.out, r.Held())
	}
	go pw.Write([]byte("\r\n"))
	if cmd, err := r.Next(); err != nil || string(cmd.(*Retrieval).Keys[0]) != "b" {
		t.Fatal(cmd, err)
	}
	r.Release()
	if p.out != 0 || r.Held() != 0 {
		t.Fatalf("lent %d, holds %d", p.out, r.Held())
	}
}
