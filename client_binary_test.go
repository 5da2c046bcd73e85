package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBinaryClients runs clients that speak memcached's binary protocol
// against a node, under both connection drivers: libmemcached's
// memccapable -b, ruby dalli 3.0 (binary only) and php-memcached with
// OPT_BINARY_PROTOCOL (testdata/clients). Each skips when not installed
// (Debian: libmemcached-tools, ruby-dalli and ruby, php-memcached and
// php-cli).
func TestBinaryClients(t *testing.T) {
	t.Parallel()
	clients := map[string]struct {
		bin  string
		args func(addr, port string) []string
		want string
	}{
		"memccapable -b": {"memccapable", func(_, port string) []string {
			return []string{"-h", "127.0.0.1", "-p", port, "-b"}
		}, "All tests passed"},
		"ruby dalli": {"ruby", func(_, port string) []string {
			return []string{"testdata/clients/dalli_binary.rb", port}
		}, "ALL OK"},
		"php-memcached": {"php", func(_, port string) []string {
			return []string{"testdata/clients/php_memcached_binary.php", port}
		}, "ALL OK"},
	}
	for _, driver := range []string{"event loops", "goroutines"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel() // a node each; the clients of one run in turn
			var args []string
			if driver == "goroutines" {
				args = append(args, "--conn-goroutines")
			}
			addr := startNode(t, args...)
			_, port, _ := strings.Cut(addr, ":")
			for name, c := range clients {
				t.Run(name, func(t *testing.T) {
					if _, err := exec.LookPath(c.bin); err != nil {
						t.Skipf("%s not installed", c.bin)
					}
					out, err := exec.Command(c.bin, c.args(addr, port)...).CombinedOutput()
					if strings.Contains(string(out), "cannot load such file") || strings.Contains(string(out), `Class "Memcached" not found`) {
						t.Skipf("client library not installed: %s", out)
					}
					if err != nil || !strings.Contains(string(out), c.want) {
						t.Fatalf("%v\n%s", err, out)
					}
				})
			}
		})
	}
}

// TestBindingFlag: -B picks the protocols a node accepts, and stats
// settings shows it as memcached does.
func TestBindingFlag(t *testing.T) {
	t.Parallel()
	noop := make([]byte, 24)
	noop[0], noop[1] = 0x80, 0x0a
	cases := map[string]struct {
		args    []string
		setting string
		noop    string // reply to a binary NOOP
	}{
		"default": {nil, "auto-negotiate", "\x81\x0a"},
		"auto":    {[]string{"-B", "auto"}, "auto-negotiate", "\x81\x0a"},
		"ascii":   {[]string{"-B", "ascii"}, "ascii", "ERROR\r\n"},
		"binary":  {[]string{"-B", "binary"}, "binary", "\x81\x0a"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			addr := startNode(t, c.args...)
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Write(append(noop, "\r\n"...)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(c.noop))
			if _, err := io.ReadFull(nc, got); err != nil || string(got) != c.noop {
				t.Fatalf("reply to a binary NOOP: %q, %v; want %q", got, err, c.noop)
			}
			if v := bindingSetting(t, addr, c.setting == "binary"); v != c.setting {
				t.Fatalf("binding_protocol %q, want %q", v, c.setting)
			}
		})
	}
	if _, err := parseFlags([]string{"-B", "bogus"}); err == nil {
		t.Fatal("-B bogus accepted")
	}
}

// bindingSetting reads binding_protocol from stats settings, over the
// binary protocol or the text one.
func bindingSetting(t *testing.T, addr string, bin bool) string {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	if !bin {
		nc.Write([]byte("stats settings\r\n"))
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "END\r\n" {
				return ""
			}
			if v, ok := strings.CutPrefix(line, "STAT binding_protocol "); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	req := make([]byte, 24, 32)
	req[0], req[1], req[3] = 0x80, 0x10, 8
	binary.BigEndian.PutUint32(req[8:], 8)
	nc.Write(append(req, "settings"...))
	for {
		var h [24]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(h[8:]))
		io.ReadFull(br, body)
		kl := binary.BigEndian.Uint16(h[2:])
		if kl == 0 {
			return ""
		}
		if string(body[:kl]) == "binding_protocol" {
			return string(body[kl:])
		}
	}
}

// TestSASLDalli: -S with a password file ($MEMCACHED_SASL_PWDB, as
// memcached's) lets dalli in with the right password (SASL PLAIN) and
// refuses it with a wrong one.
func TestSASLDalli(t *testing.T) {
	if _, err := exec.LookPath("ruby"); err != nil {
		t.Skip("ruby not installed")
	}
	pw := filepath.Join(t.TempDir(), "pwdb")
	if err := os.WriteFile(pw, []byte("alice:secret\nbob:builder\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MEMCACHED_SASL_PWDB", pw)
	addr := startNode(t, "-S")
	script := `require 'dalli'
Dalli.logger.level = Logger::WARN
ok = Dalli::Client.new(ARGV[0], username: "alice", password: "secret", socket_timeout: 2)
ok.set("k", "v")
puts ok.get("k")
bad = Dalli::Client.new(ARGV[0], username: "alice", password: "wrong", socket_timeout: 2, socket_max_failures: 1)
begin
  bad.get("k")
  puts "no error"
rescue Dalli::DalliError => e
  puts "refused"
end`
	out, err := exec.Command("ruby", "-e", script, addr).CombinedOutput()
	if strings.Contains(string(out), "cannot load such file") {
		t.Skipf("dalli not installed: %s", out)
	}
	if err != nil || strings.TrimSpace(string(out)) != "v\nrefused" {
		t.Fatalf("%v\n%s", err, out)
	}
}
