package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"shoal/internal/statsread"
	"shoal/internal/testca"
	"shoal/internal/testutil"
)

// tlsDial returns a gomemcache dialer over TLS trusting ca (and presenting
// cert, if any).
func tlsDial(ca *testca.CA, cert *tls.Certificate) func(ctx context.Context, network, addr string) (net.Conn, error) {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	d := &tls.Dialer{Config: cfg}
	return d.DialContext
}

// tlsLine sends req over a new TLS connection and reads one line.
func tlsLine(t *testing.T, addr string, ca *testca.CA, req string) (string, *x509.Certificate) {
	t.Helper()
	c, err := tlsDial(ca, nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(req))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return line, c.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// TestClientTLS: -Z serves the client port over TLS, as memcached 1.6:
// gomemcache and pymemcache work through it, a plain client gets nothing
// (and counts as a failed handshake), refresh_certs reloads the files, and
// ssl_verify_mode 2 requires a client certificate from ssl_ca_cert.
func TestClientTLS(t *testing.T) {
	t.Parallel()
	ca := testca.New(t, "client-ca")
	certFile, keyFile := ca.Issue(t, "server")
	addr := startNode(t, "-Z", "-o", "ssl_chain_cert="+certFile+",ssl_key="+keyFile)

	mc := memcache.New(addr)
	mc.DialContext = tlsDial(ca, nil)
	if err := mc.Set(&memcache.Item{Key: "k", Value: []byte("over tls")}); err != nil {
		t.Fatal(err)
	}
	if it, err := mc.Get("k"); err != nil || string(it.Value) != "over tls" {
		t.Fatalf("get over TLS: %v %v", it, err)
	}

	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	plain.SetDeadline(time.Now().Add(3 * time.Second))
	plain.Write([]byte("version\r\n"))
	if line, _ := bufio.NewReader(plain).ReadString('\n'); strings.HasPrefix(line, "VERSION") {
		t.Fatal("a plain client was answered on the TLS port")
	}
	plain.Close()

	if _, err := exec.LookPath("python3"); err == nil {
		host, port, _ := strings.Cut(addr, ":")
		out, err := exec.Command("python3", "-c", `
import ssl
from pymemcache.client.base import Client
ctx = ssl.create_default_context(cafile="`+ca.Path("ca.pem")+`")
c = Client(("`+host+`", `+port+`), tls_context=ctx)
print(c.get("k").decode())
`).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "No module named") {
			t.Errorf("pymemcache over TLS: %v\n%s", err, out)
		} else if err == nil && strings.TrimSpace(string(out)) != "over tls" {
			t.Errorf("pymemcache over TLS read %q", out)
		}
	}

	if _, err := exec.LookPath("openssl"); err == nil {
		opensslGet(t, addr, ca)
	}

	_, before := tlsLine(t, addr, ca, "version\r\n")
	newCert, newKey := ca.Issue(t, "server2")
	os.Rename(newCert, certFile)
	os.Rename(newKey, keyFile)
	if line, _ := tlsLine(t, addr, ca, "refresh_certs\r\n"); line != "OK\r\n" {
		t.Fatalf("refresh_certs: %q", line)
	}
	if _, after := tlsLine(t, addr, ca, "version\r\n"); after.SerialNumber.Cmp(before.SerialNumber) == 0 {
		t.Error("refresh_certs did not load the new certificate")
	}
	os.Remove(certFile)
	if line, _ := tlsLine(t, addr, ca, "refresh_certs\r\n"); !strings.HasPrefix(line, "Error loading the certificate chain: "+certFile) {
		t.Errorf("refresh_certs without the file: %q", line)
	}
	if line, _ := tlsLine(t, addr, ca, "version\r\n"); !strings.HasPrefix(line, "VERSION") {
		t.Errorf("after a failed refresh: %q", line)
	}
	if v := tlsStat(t, addr, ca, "", "ssl_handshake_errors"); v == "" || v == "0" {
		t.Errorf("ssl_handshake_errors %q after a plain client", v)
	}
	if v := tlsStat(t, addr, ca, "settings", "ssl_enabled"); v != "yes" {
		t.Errorf("ssl_enabled %q", v)
	}

	t.Run("verify mode 2", func(t *testing.T) {
		c2, k2 := ca.Issue(t, "server3")
		addr := startNode(t, "-Z", "-o", "ssl_chain_cert="+c2+",ssl_key="+k2+",ssl_ca_cert="+ca.Path("ca.pem")+",ssl_verify_mode=2")
		anon := memcache.New(addr)
		anon.DialContext = tlsDial(ca, nil)
		if err := anon.Set(&memcache.Item{Key: "k", Value: []byte("x")}); err == nil {
			t.Fatal("a client without a certificate was served")
		}
		cc, ck := ca.Issue(t, "client")
		pair, err := tls.LoadX509KeyPair(cc, ck)
		if err != nil {
			t.Fatal(err)
		}
		mc := memcache.New(addr)
		mc.DialContext = tlsDial(ca, &pair)
		if err := mc.Set(&memcache.Item{Key: "k", Value: []byte("x")}); err != nil {
			t.Fatalf("a client with a certificate: %v", err)
		}
	})
	t.Run("refresh_certs without TLS", func(t *testing.T) {
		lines, err := testutil.TextLines(startNode(t), "refresh_certs\r\n", 1)
		if err != nil || lines[0] != "Error TLS not enabled" {
			t.Fatalf("%q %v", lines, err)
		}
	})
}

// tlsStat reads one field of "stats <sub>" over TLS.
func tlsStat(t *testing.T, addr string, ca *testca.CA, sub, name string) string {
	t.Helper()
	c, err := tlsDial(ca, nil)(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return statsread.On(c, sub)[name]
}

// opensslGet reads k through openssl s_client, verifying the server's
// certificate; stdin stays open until the reply has come.
func opensslGet(t *testing.T, addr string, ca *testca.CA) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", addr, "-CAfile", ca.Path("ca.pem"), "-quiet", "-verify_return_error")
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill() // -quiet keeps it open after stdin ends
	in.Write([]byte("get k\r\n"))
	r := bufio.NewReader(out)
	var got strings.Builder
	for !strings.HasSuffix(got.String(), "END\r\n") {
		line, err := r.ReadString('\n')
		got.WriteString(line)
		if err != nil {
			break
		}
	}
	if got.String() != "VALUE k 0 8\r\nover tls\r\nEND\r\n" {
		t.Errorf("openssl s_client read %q", got.String())
	}
}
