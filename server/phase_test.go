package server

import (
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"shoal/internal/testutil"
)

// TestStatsConnsStates: stats conns names each connection's state as
// memcached 1.6.18 does: conn_nread mid data block, conn_new_cmd before
// any input, conn_read between commands and with half a line,
// conn_parse_cmd for the connection asking.
func TestStatsConnsStates(t *testing.T) {
	for name, start := range map[string]func(testing.TB, ...string) string{"shoal": startShoal, "memcached": startMemcached} {
		t.Run(name, func(t *testing.T) {
			addr := start(t)
			want := map[string]string{}
			dial := func(send, state string) net.Conn {
				c := dial(t, addr)
				c.Write([]byte(send))
				want["tcp:"+c.LocalAddr().String()] = state
				return c
			}
			dial("set foo 0 0 10\r\nabc", "conn_nread")
			dial("", "conn_new_cmd")
			done := dial("get x\r\n", "conn_read")
			buf := make([]byte, 64)
			done.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := done.Read(buf); err != nil {
				t.Fatal(err)
			}
			dial("get x", "conn_read")
			asks := dial("", "conn_parse_cmd")
			// Polled until the server has read what was sent.
			testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("states %v", want), func() (bool, string) {
				got := connStates(t, asks)
				return maps.Equal(got, want), fmt.Sprint(got)
			})
		})
	}
}

// connStates asks stats conns on c and returns each client address's
// state.
func connStates(t *testing.T, c net.Conn) map[string]string {
	t.Helper()
	c.Write([]byte("stats conns\r\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	var out []byte
	buf := make([]byte, 4096)
	for !strings.HasSuffix(string(out), "END\r\n") {
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("stats conns: %v after %q", err, out)
		}
	}
	addrs, states := map[string]string{}, map[string]string{}
	for _, l := range strings.Split(string(out), "\r\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		id, field, _ := strings.Cut(f[1], ":")
		switch field {
		case "addr":
			addrs[id] = f[2]
		case "state":
			if f[2] != "conn_listening" {
				states[addrs[id]] = f[2]
			}
		}
	}
	return states
}
