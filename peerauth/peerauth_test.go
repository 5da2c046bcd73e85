package peerauth

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"shoal/internal/testca"
)

func tlsAuth(t *testing.T, c *testca.CA, name string) *Auth {
	t.Helper()
	cert, key := c.IssuePEM(t, name)
	a, err := NewTLS(c.PEM(), cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func secretAuth(t *testing.T, secret string) *Auth {
	t.Helper()
	a, err := NewSecret([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serve accepts through srv's Listener on a real TCP port and echoes, on
// each authenticated connection, the first line it reads, prefixed with
// "echo ". It returns the address.
func serve(t *testing.T, srv *Auth) string {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := srv.Listener(inner, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					io.WriteString(c, "echo "+line)
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return inner.Addr().String()
}

// dial connects to addr and authenticates with cli (nil: no handshake).
func dial(t *testing.T, addr string, cli *Auth) (net.Conn, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if cli == nil {
		return nc, nil
	}
	c, err := cli.Client(context.Background(), nc)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// roundTrip sends a line and returns everything read back until the
// server closes or a second passes.
func roundTrip(c net.Conn, line string) string {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, line)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestMembersAuthenticate(t *testing.T) {
	ca1 := testca.New(t, "cluster")
	cases := map[string]struct{ srv, cli *Auth }{
		"secret": {secretAuth(t, "0123456789abcdef-cluster"), secretAuth(t, "0123456789abcdef-cluster\n")},
		"tls":    {tlsAuth(t, ca1, "a"), tlsAuth(t, ca1, "b")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			addr := serve(t, tc.srv)
			c, err := dial(t, addr, tc.cli)
			if err != nil {
				t.Fatalf("member refused: %v", err)
			}
			// The bytes right after the handshake reach the server's owner.
			if got := roundTrip(c, "get k\r\n"); got != "echo get k\r\n" {
				t.Fatalf("after the handshake: got %q", got)
			}
		})
	}
}

func TestOutsidersRefused(t *testing.T) {
	ca1, ca2 := testca.New(t, "cluster"), testca.New(t, "other")
	secret := secretAuth(t, "0123456789abcdef-cluster")
	cases := map[string]struct {
		srv, cli *Auth
		plain    string // without cli: what the outsider sends
	}{
		"secret, wrong secret":       {srv: secret, cli: secretAuth(t, "0123456789abcdef-another")},
		"secret, no handshake":       {srv: secret, plain: "flush_all\r\n"},
		"secret, forged hello":       {srv: secret, plain: "shoal-auth 1 00112233445566778899aabbccddeeff\r\nffff\r\nflush_all\r\n"},
		"tls, certificate of a CA":   {srv: tlsAuth(t, ca1, "a"), cli: tlsAuth(t, ca2, "b")},
		"tls, plain text":            {srv: tlsAuth(t, ca1, "a"), plain: "flush_all\r\n"},
		"tls, server of another CA":  {srv: tlsAuth(t, ca2, "a"), cli: tlsAuth(t, ca1, "b")},
		"secret client, tls server":  {srv: tlsAuth(t, ca1, "a"), cli: secret},
		"tls client, secret server":  {srv: secret, cli: tlsAuth(t, ca1, "b")},
		"secret, client of a member": {srv: secretAuth(t, "0123456789abcdef-another"), cli: secret},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			addr := serve(t, tc.srv)
			c, err := dial(t, addr, tc.cli)
			if tc.cli == nil {
				got := roundTrip(c, tc.plain)
				if strings.Contains(got, "echo") {
					t.Fatalf("an outsider's command reached the server: %q", got)
				}
				return
			}
			if err == nil {
				// TLS 1.3: a client learns that its certificate was refused
				// on its first read.
				got := roundTrip(c, "flush_all\r\n")
				if strings.Contains(got, "echo") {
					t.Fatalf("an outsider's command reached the server: %q", got)
				}
				return
			}
			if !errors.Is(err, ErrRefused) && !strings.Contains(err.Error(), "handshake") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestSecretNeverSent(t *testing.T) {
	const secret = "0123456789abcdef-cluster"
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	got := make(chan string, 1)
	go func() {
		nc, err := inner.Accept()
		if err != nil {
			got <- ""
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(nc) // the client's hello; no answer: it gives up
		got <- string(b)
	}()
	nc, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := secretAuth(t, secret).Client(ctx, nc); err == nil {
		t.Fatal("handshake without a server's answer succeeded")
	}
	nc.Close()
	if sent := <-got; !strings.HasPrefix(sent, "shoal-auth 1 ") || strings.Contains(sent, secret) {
		t.Fatalf("client sent %q", sent)
	}
}

func TestListenerCloseStopsHandshakes(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := secretAuth(t, "0123456789abcdef-cluster").Listener(inner, nil).(*listener)
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	// A silent client: its handshake waits for a hello that never comes.
	nc, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for len(l.pending) == 0 {
		time.Sleep(time.Millisecond)
	}
	l.Close() // returns once the handshake's goroutine has exited
	if len(l.pending) != 0 {
		t.Fatal("a handshake outlived Close")
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}

func TestNewSecretTooShort(t *testing.T) {
	if _, err := NewSecret([]byte("short\n")); !errors.Is(err, ErrConfig) {
		t.Fatalf("err = %v", err)
	}
}
