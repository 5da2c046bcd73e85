// Package statsread reads a memcached "stats" reply into a map, for the
// tests that ask real nodes over TCP or TLS (the root package's, client/,
// e2e/cluster, e2e/history, e2e/hostile), and their /metrics pages.
// Only tests import it.
package statsread

import (
	"bufio"
	"net"
	"strings"
	"time"
)

// On sends "stats <sub>" ("" for the general stats) on c, returns the
// fields up to END and closes c. It returns nil when c fails first.
func On(c net.Conn, sub string) map[string]string {
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(strings.TrimSpace("stats "+sub) + "\r\n")); err != nil {
		return nil
	}
	out := make(map[string]string)
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return out
		}
		if f := strings.SplitN(line, " ", 3); len(f) == 3 {
			out[f[1]] = f[2]
		}
	}
}

// Dial asks addr for "stats <sub>" on a new connection; nil when it does
// not answer.
func Dial(addr, sub string) map[string]string {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil
	}
	return On(c, sub)
}
