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

	"shoal/internal/testutil"
)

// TestASCIIAuth: with -Y, a connection's first command must be a set of
// "<user> <password>"; anything else is answered with a CLIENT_ERROR and
// the connection stays open for another try (memcached's t/ascii-auth.t).
// Each step is sent on its own, as memcached answers only the last of the
// commands that arrive in one read while unauthenticated. Replies are
// compared byte for byte with memcached 1.6.18 started with the same file,
// when it is installed, and with what it answered when this was written.
func TestASCIIAuth(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "auth")
	os.WriteFile(file, []byte("alice:secret\nbob:pw2\n"), 0600)
	servers := map[string]string{"shoal": startNode(t, "-Y", file)}
	if _, err := os.Stat("/usr/bin/memcached"); err == nil {
		port := testutil.FreePort(t)
		cmd := exec.Command("/usr/bin/memcached", "-u", "root", "-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-Y", file)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		servers["memcached"] = "127.0.0.1:" + strconv.Itoa(port)
		testutil.WaitUntil(t, 5*time.Second, "memcached", func() (bool, string) {
			c, err := net.Dial("tcp", servers["memcached"])
			if err == nil {
				c.Close()
			}
			return err == nil, ""
		})
	}
	type step struct{ req, want string }
	cases := map[string][]step{
		"no auth": {{"get a\r\n", "CLIENT_ERROR unauthenticated\r\n"}, {"version\r\n", "CLIENT_ERROR unauthenticated\r\n"}},
		"good": {{"set x 0 0 12\r\nalice secret\r\n", "STORED\r\n"}, {"get a\r\n", "END\r\n"},
			{"set a 0 0 1\r\n1\r\nget a\r\n", "STORED\r\nVALUE a 0 1\r\n1\r\nEND\r\n"}},
		"wrong password then good": {{"set x 0 0 11\r\nalice wrong\r\n", "CLIENT_ERROR authentication failure\r\n"},
			{"get a\r\n", "CLIENT_ERROR unauthenticated\r\n"}, {"set x 0 0 7\r\nbob pw2\r\n", "STORED\r\n"}, {"get nokey\r\n", "END\r\n"}},
		"no space":     {{"set x 0 0 3\r\nabc\r\n", "CLIENT_ERROR bad authentication token format\r\n"}, {"version\r\n", "CLIENT_ERROR unauthenticated\r\n"}},
		"extra token":  {{"set x 0 0 16\r\nalice secret bob\r\n", "STORED\r\n"}},
		"meta first":   {{"mg a v\r\n", "CLIENT_ERROR unauthenticated\r\n"}},
		"bad set line": {{"set x 0 0 zz\r\n", "CLIENT_ERROR unauthenticated\r\n"}, {"set x 0 0 12\r\nalice secret\r\n", "STORED\r\n"}},
		"noreply":      {{"set x 0 0 12 noreply\r\nalice secret\r\n", "STORED\r\n"}, {"mn\r\n", "MN\r\n"}},
	}
	for name, steps := range cases {
		for server, addr := range servers {
			t.Run(name+"/"+server, func(t *testing.T) {
				t.Parallel() // a connection each; readQuiet waits 300 ms a step
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for _, st := range steps {
					c.Write([]byte(st.req))
					if got := readQuiet(c); got != st.want {
						t.Fatalf("%q: got %q, want %q", st.req, got, st.want)
					}
				}
			})
		}
	}
}

// readQuiet reads until the server closes or is quiet 300 ms.
func readQuiet(c net.Conn) string {
	var out []byte
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return string(out)
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
