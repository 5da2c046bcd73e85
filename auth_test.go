package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestASCIIAuth: with -Y, a connection's first command must be a set of
// "<user> <password>"; anything else, or a wrong password, is answered
// "CLIENT_ERROR unauthenticated" and the connection closed. Replies are
// compared byte for byte with memcached 1.6.18 started with the same file,
// when it is installed, and with what it answered when this was written.
func TestASCIIAuth(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(file, []byte("alice:secret\nbob:pw2\n"), 0600)
	servers := map[string]string{"shoal": startNode(t, "-Y", file)}
	if _, err := os.Stat("/usr/bin/memcached"); err == nil {
		port := freePortNum(t)
		cmd := exec.Command("/usr/bin/memcached", "-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-Y", file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		servers["memcached"] = "127.0.0.1:" + strconv.Itoa(port)
		waitFor(t, 5*time.Second, "memcached", func() (bool, string) {
			c, err := net.Dial("tcp", servers["memcached"])
			if err == nil {
				c.Close()
			}
			return err == nil, ""
		})
	}
	cases := map[string]struct{ req, want string }{
		"no auth":        {"get a\r\nversion\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		"good":           {"set x 0 0 12\r\nalice secret\r\nget a\r\nset a 0 0 1\r\n1\r\nget a\r\n", "STORED\r\nEND\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n"},
		"wrong password": {"set x 0 0 11\r\nalice wrong\r\nget a\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		"no space":       {"set x 0 0 3\r\nabc\r\nversion\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		"meta first":     {"mg a v\r\n", "CLIENT_ERROR unauthenticated\r\n"},
		"noreply":        {"set x 0 0 12 noreply\r\nalice secret\r\nmn\r\n", "STORED\r\nMN\r\n"},
	}
	for name, tc := range cases {
		for server, addr := range servers {
			t.Run(name+"/"+server, func(t *testing.T) {
				if got := exchange(t, addr, tc.req); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
	}
}

// exchange sends req and reads until the server closes or is quiet 300 ms.
func exchange(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(req))
	var out []byte
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF || err != nil {
			return string(out)
		}
	}
}

func freePortNum(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
