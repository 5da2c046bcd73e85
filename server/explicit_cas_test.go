package server

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// explicitCASExchange sends the requests on a fresh connection to addr and
// returns the reply lines.
func explicitCASExchange(t *testing.T, addr string, lines int, reqs ...string) []string {
	t.Helper()
	c := dial(t, addr)
	defer c.Close()
	if _, err := io.WriteString(c, strings.Join(reqs, "")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []string
	for range lines {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		out = append(out, strings.TrimSuffix(l, "\r\n"))
	}
	return out
}

// TestExplicitCAS: a peer-config server (PeerExtensions) stores the CAS sent
// with E; a client-config server rejects E as memcached 1.6.18 does.
func TestExplicitCAS(t *testing.T) {
	peerAddr := startShoalConfig(t, Config{PeerExtensions: true})
	got := explicitCASExchange(t, peerAddr, 9,
		"ms k 1 E12345\r\nx\r\n",
		"mg k c v\r\n",
		"ms k 1 C12345 E777 c\r\ny\r\n",
		"md k I E888\r\n",
		"mg k c\r\n",
		"ma n N0 J5 E99 c\r\n",
		"mg n c v\r\n",
	)
	want := []string{"HD", "VA 1 c12345", "x", "HD c777", "HD", "HD c888 X W", "HD c99", "VA 1 c99", "5"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("peer replies %q, want %q", got, want)
	}

	clientAddr := startShoalConfig(t, Config{})
	got = explicitCASExchange(t, clientAddr, 4,
		"ms k 1 E12345\r\nx\r\n",
		"md k I E5\r\n",
		"mg k E5\r\n",
		"mn\r\n",
	)
	want = []string{"CLIENT_ERROR invalid flag", "CLIENT_ERROR invalid or duplicate flag", "CLIENT_ERROR invalid flag", "MN"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("client replies %q, want %q", got, want)
	}
}
