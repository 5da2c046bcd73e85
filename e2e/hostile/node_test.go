package hostile

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/internal/testbin"
	"shoal/internal/testutil"
)

var (
	compare   = flag.Bool("compare", false, "also run every case against Debian's memcached and print both peaks")
	memcached = flag.String("memcached", "/usr/bin/memcached", "the memcached binary for -compare")
	hold      = flag.Duration("hold", 3*time.Second, "how long an attack holds its connections open")
)

func TestMain(m *testing.M) {
	// Three nodes at once unless -parallel says otherwise: an attack
	// mostly holds its connections and waits (-hold). Two of them hold
	// 4000 client sockets each, of the 20000 a process may open here.
	testutil.Parallel(3)
	os.Exit(m.Run())
}

// shoalBinary is the shoal command, built once for the whole test run.
func shoalBinary(t testing.TB) string { return testbin.Path(t) }

// server is one running cache process: shoal or memcached.
type server struct {
	name    string
	addr    string
	cluster bool // a node of a cluster (attack.cluster)
	cmd     *exec.Cmd
	stderr  bytes.Buffer
}

// start runs bin with memcached's flags plus args on a free loopback port
// and waits until it answers "version".
func start(t testing.TB, name, bin string, args ...string) *server {
	t.Helper()
	port := testutil.FreePort(t)
	all := append([]string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0"}, args...)
	s := &server{name: name, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	s.cmd = exec.Command(bin, all...)
	s.cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) // a --dev etcd's directory goes with the test
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	})
	defer func() {
		if t.Failed() {
			t.Logf("%s stderr: %s", name, s.stderr.String())
		}
	}()
	testutil.WaitUntil(t, 20*time.Second, name+" to answer version", func() (bool, string) {
		_, err := command(s.addr, "version\r\n")
		return err == nil, fmt.Sprint(err)
	})
	return s
}

// memKB reads a field (VmRSS, VmHWM) of the process's /proc status, in KiB.
func (s *server) memKB(t testing.TB, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%s: %v (did it crash? %s)", s.name, err, s.stderr.String())
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

func (s *server) alive(t testing.TB) {
	t.Helper()
	if s.cmd.ProcessState != nil {
		t.Fatalf("%s exited: %s", s.name, s.stderr.String())
	}
	if err := s.cmd.Process.Signal(syscallZero); err != nil {
		t.Fatalf("%s is gone: %v; %s", s.name, err, s.stderr.String())
	}
}

// command sends req on a new connection and returns the reply up to the
// first END, STORED or other one-line answer.
func command(addr, req string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	var out strings.Builder
	for {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			return out.String(), err
		}
		switch {
		case strings.HasPrefix(line, "VALUE "):
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[3])
			if _, err := r.Discard(n + 2); err != nil {
				return out.String(), err
			}
		case strings.HasPrefix(line, "STAT "):
		default:
			return out.String(), nil
		}
	}
}

// healthy checks that a normal client is still served: a set and a get of
// a fresh key on a new connection.
func healthy(t testing.TB, s *server) {
	t.Helper()
	s.alive(t)
	if got, err := command(s.addr, "set health 0 0 2\r\nok\r\n"); err != nil || got != "STORED\r\n" {
		t.Fatalf("%s: set after the attack: %q, %v", s.name, got, err)
	}
	if got, err := command(s.addr, "get health\r\n"); err != nil || got != "VALUE health 0 2\r\nEND\r\n" {
		t.Fatalf("%s: get after the attack: %q, %v", s.name, got, err)
	}
}

// preload stores n values of size bytes under prefix0..prefix<n-1>.
func preload(t testing.TB, addr, prefix string, n, size int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	val := bytes.Repeat([]byte{'v'}, size)
	for i := range n {
		fmt.Fprintf(c, "set %s%d 0 0 %d\r\n", prefix, i, size)
		c.Write(val)
		c.Write([]byte("\r\n"))
		line, err := r.ReadString('\n')
		if err != nil || line != "STORED\r\n" {
			t.Fatalf("preload %s%d: %q %v", prefix, i, line, err)
		}
	}
}

// dialMany opens n connections, each sending first; they stay open until
// the returned close function runs.
func dialMany(t testing.TB, addr string, n int, first []byte) func() {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if first != nil {
			if _, err := c.Write(first); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
	}
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}
