package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"shoal/store"
)

func TestNoAdminRefusesAdministration(t *testing.T) {
	addr := startShoalConfig(t, Config{NoAdmin: true, PeerExtensions: true, EnableShutdown: true})
	c := dial(t, addr)
	r := served(t, c, "peer port")
	for _, cmd := range []string{"verbosity 1", "verbosity 1 noreply", "cache_memlimit 8", "cache_memlimit 8 noreply", "shutdown"} {
		io.WriteString(c, cmd+"\r\n")
		if line, err := r.ReadString('\n'); err != nil || line != "CLIENT_ERROR not allowed on this port\r\n" {
			t.Fatalf("%s: %q, %v", cmd, line, err)
		}
	}
	// Members propagate flush_all; it stays.
	io.WriteString(c, "flush_all\r\nstats settings\r\n")
	if line, _ := r.ReadString('\n'); line != "OK\r\n" {
		t.Fatalf("flush_all: %q", line)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "END\r\n" {
			t.Fatalf("no maxbytes in stats settings (%v)", err)
		}
		if strings.HasPrefix(line, "STAT maxbytes ") {
			if line == "STAT maxbytes 8388608\r\n" {
				t.Fatal("cache_memlimit applied on a NoAdmin port")
			}
			break
		}
	}
}

// A TLS connection is no socket the event loops can take: it gets a
// goroutine, whatever Config.EventLoop says.
func TestTLSConnServedUnderEventLoop(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{EventLoop: true, Loops: 1}, Local{st})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- srv.Serve(tls.NewListener(inner, &tls.Config{Certificates: []tls.Certificate{cert}}))
	}()
	defer func() {
		srv.Shutdown(t.Context())
		if err := <-served; !errors.Is(err, ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	c, err := tls.Dial("tcp", inner.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "set k 0 0 1\r\nv\r\nget k\r\n")
	want := "STORED\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestPeerBatchesAllocateNothing: on the peer port, a batch of replies
// larger than a base buffer (120 quiet mg of 100-byte values, as a
// forwarding node's batch of gets) allocates nothing once the connection
// has answered one: it keeps its grown reply buffer while it waits for
// the next batch (keepsOut). It grew a fresh one per batch before, and
// the GC took it.
func TestPeerBatchesAllocateNothing(t *testing.T) {
	const limit = 256 << 10
	srv, st := limitedServer(t, 1, 64<<10, limit, nil) // the limit is at least twice -I
	srv.cfg.PeerExtensions = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, srv, ln)
	for i := range 120 {
		st.Set([]byte(fmt.Sprint("k", i)), []byte(strings.Repeat("v", 100)), &store.SetOptions{})
	}
	var req strings.Builder
	for i := range 120 {
		fmt.Fprintf(&req, "mg k%d v f c t q O%d\r\n", i, i)
	}
	req.WriteString("mn\r\n")
	batch := []byte(req.String())
	reply := make([]byte, 64<<10)
	c := dial(t, addr)
	roundTrip := func() {
		if _, err := c.Write(batch); err != nil {
			t.Fatal(err)
		}
		n := 0
		for n < 4 || string(reply[n-4:n]) != "MN\r\n" {
			m, err := c.Read(reply[n:])
			if err != nil {
				t.Fatal(err)
			}
			n += m
		}
		if n <= outBase {
			t.Fatalf("a batch's replies took %d bytes, not more than a base buffer", n)
		}
	}
	roundTrip()
	if a := testing.AllocsPerRun(50, roundTrip); a >= 1 {
		t.Errorf("%.1f allocations per batch of replies on the peer port, want none", a)
	}

	// Many connections that each answered such a batch keep no more than
	// the limit, a base buffer each aside.
	for range 100 {
		c = dial(t, addr)
		roundTrip()
	}
	if m := srv.Stats().ConnMem; m.Limit != limit || m.Held > limit+peerOutKeep {
		t.Errorf("101 idle peer connections keep %d bytes beyond their base buffers, limit %d", m.Held, m.Limit)
	}
}

// TestPeerRoomWithheld: on the peer port, mg with A (room) smaller than
// the value answers HD with the value's size, echoing k and O in request
// order as every meta reply does; with room enough, the value comes.
func TestPeerRoomWithheld(t *testing.T) {
	addr := startShoalConfig(t, Config{PeerExtensions: true})
	c := dial(t, addr)
	r := served(t, c, "peer port")
	io.WriteString(c, "ms big 100 q\r\n"+strings.Repeat("v", 100)+"\r\nmg big v A10 k Oab\r\nmg big v A100 k Ocd\r\n")
	want := "HD s100 kbig Oab\r\nVA 100 kbig Ocd\r\n" + strings.Repeat("v", 100) + "\r\n"
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}
