package protocol

import (
	"bytes"
	"strings"
	"testing"
)

// checkNextIsGet feeds in (after a first command, so that the Reader is
// in text mode) and, at every command, checks NextIsGet's promise: when it
// says yes, Next returns a get (gets) of one key, with the key the line
// holds, neither BadKey nor More. It returns how many times it said yes.
func checkNextIsGet(t *testing.T, in string) int {
	t.Helper()
	r := NewReader(strings.NewReader("version\r\n"+in), 0)
	if _, err := r.Next(); err != nil {
		t.Fatalf("first command: %v", err)
	}
	yes := 0
	for {
		var said [2]bool
		var line []byte
		for i, withCAS := range []bool{false, true} {
			said[i] = r.NextIsGet(withCAS)
		}
		if said[0] || said[1] {
			yes++
			b := r.buf[r.start:r.end]
			line = bytes.Clone(b[:bytes.IndexByte(b, '\n')])
		}
		cmd, err := r.Next()
		if err != nil {
			if said[0] || said[1] {
				t.Fatalf("NextIsGet said yes for %q, Next failed: %v", line, err)
			}
			return yes
		}
		if !said[0] && !said[1] {
			continue
		}
		if said[0] && said[1] {
			t.Fatalf("NextIsGet said yes for both get and gets: %q", line)
		}
		g, ok := cmd.(*Retrieval)
		want := OpGet
		if said[1] {
			want = OpGets
		}
		if !ok || g.Op != want || len(g.Keys) != 1 || g.BadKey || g.More {
			t.Fatalf("NextIsGet said yes for %q, Next returned %#v", line, cmd)
		}
		key := bytes.TrimSuffix(line, []byte("\r"))
		key = key[bytes.IndexByte(key, ' ')+1:]
		if !bytes.Equal(g.Keys[0], key) {
			t.Fatalf("NextIsGet said yes for %q, Next's key is %q", line, g.Keys[0])
		}
	}
}

func TestNextIsGet(t *testing.T) {
	long := strings.Repeat("k", KeyMaxLength)
	for _, c := range []struct {
		in   string
		want int // commands NextIsGet recognises
	}{
		{"get a\r\nget b\r\n", 2},
		{"gets a\r\nget b\nget c", 2}, // the last line is not whole
		{"get " + long + "\r\nget " + long + "k\r\n", 1},
		{"get a b\r\nget  a\r\nget a \r\nget\r\nget \r\n", 0},
		{"get a\tb\r\nget a\rb\r\nget a\x00\r\n", 0},
		{"set a 0 0 1\r\nx\r\nget a\r\nmg a v\r\ngat 0 a\r\n", 1},
	} {
		if got := checkNextIsGet(t, c.in); got != c.want {
			t.Errorf("%q: NextIsGet said yes %d times, want %d", c.in, got, c.want)
		}
	}
}

// FuzzNextIsGet: whatever the input, NextIsGet never says yes to a line
// Next answers with anything but a one-key get.
func FuzzNextIsGet(f *testing.F) {
	for _, s := range []string{"get a\r\nget b\r\n", "gets k\nget a b\r\n", "get \xff\r\n", "get a\r\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) { checkNextIsGet(t, in) })
}
