package main

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
)

// fakeConn returns a conn whose reads come from the given server transcript.
func fakeConn(t *testing.T, reply string) *conn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	go func() { _, _ = b.Write([]byte(reply)) }()
	return &conn{nc: a, r: bufio.NewReader(a), w: bufio.NewWriter(a)}
}

func TestReadGet(t *testing.T) {
	cases := map[string]struct {
		reply   string
		hit     bool
		errKind string // "", "server" or "fatal"
	}{
		"hit":              {"VALUE k:1 0 5\r\nhello\r\nEND\r\n", true, ""},
		"hit with cas":     {"VALUE k:1 3 2 99\r\nhi\r\nEND\r\n", true, ""},
		"value holds crlf": {"VALUE k:1 0 4\r\n\r\n\r\n\r\nEND\r\n", true, ""},
		"miss":             {"END\r\n", false, ""},
		"server error":     {"SERVER_ERROR out of memory\r\n", false, "server"},
		"garbage":          {"STORED\r\n", false, "fatal"},
		"missing END":      {"VALUE k:1 0 1\r\nx\r\nVALUE\r\n", false, "fatal"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			hit, err := fakeConn(t, tc.reply).readGet()
			switch {
			case tc.errKind == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.errKind == "server" && !errors.Is(err, errServer):
				t.Fatalf("err = %v, want errServer", err)
			case tc.errKind == "fatal" && !isFatal(err):
				t.Fatalf("err = %v, want a fatal error", err)
			}
			if tc.errKind == "" && hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
		})
	}
}

func TestSendSetWireFormat(t *testing.T) {
	var sb strings.Builder
	c := &conn{w: bufio.NewWriter(&sb)}
	c.sendSet(42, []byte("abc"))
	c.sendGet(7)
	_ = c.flush()
	if got, want := sb.String(), "set k:42 0 0 3\r\nabc\r\nget k:7\r\n"; got != want {
		t.Fatalf("wire = %q, want %q", got, want)
	}
}

func TestStats(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		buf := make([]byte, 64)
		_, _ = b.Read(buf) // "stats\r\n"
		_, _ = b.Write([]byte("STAT pid 1\r\nSTAT curr_items 12\r\nEND\r\n"))
	}()
	c := &conn{nc: a, r: bufio.NewReader(a), w: bufio.NewWriter(a)}
	st, err := c.stats()
	if err != nil {
		t.Fatal(err)
	}
	if st["curr_items"] != "12" {
		t.Fatalf("curr_items = %q", st["curr_items"])
	}
}
