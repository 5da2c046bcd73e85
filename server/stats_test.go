package server

import (
	"net"
	"testing"
)

func TestConnAddr(t *testing.T) {
	// memcached's stats conns: "tcp:" for IPv4 sockets, "tcp6:" for IPv6.
	cases := map[string]struct {
		addr net.Addr
		want string
	}{
		"ipv4":          {&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 11211}, "tcp:127.0.0.1:11211"},
		"ipv4 any":      {&net.TCPAddr{IP: net.IPv4zero, Port: 11211}, "tcp:0.0.0.0:11211"},
		"ipv6 loopback": {&net.TCPAddr{IP: net.IPv6loopback, Port: 40000}, "tcp6:[::1]:40000"},
		"ipv6 any":      {&net.TCPAddr{IP: net.IPv6unspecified, Port: 11211}, "tcp6:[::]:11211"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := connAddr(tc.addr); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}
