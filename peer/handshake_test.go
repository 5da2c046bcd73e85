package peer

import (
	"context"
	"errors"
	"testing"
	"time"

	"shoal/peerauth"
)

// Every connection the client dials (pooled, flush_all's, a dump's) runs
// Config.Handshake first; one that fails is ErrHandshake.
func TestHandshake(t *testing.T) {
	member, err := peerauth.NewSecret([]byte("0123456789abcdef-cluster"))
	if err != nil {
		t.Fatal(err)
	}
	outsider, err := peerauth.NewSecret([]byte("0123456789abcdef-another"))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveShoal(t, member.Listener(listen(t, "127.0.0.1:0"), nil))
	ctx := context.Background()

	c := newClient(t, Config{Addr: addr, Handshake: member.Client})
	if _, _, err := c.Set(ctx, []byte("k"), []byte("v"), SetOptions{}); err != nil {
		t.Fatalf("set as a member: %v", err)
	}
	if it, ok, err := c.Get(ctx, []byte("k"), GetOptions{}); err != nil || !ok || string(it.Value) != "v" {
		t.Fatalf("get as a member: %q %v %v", it.Value, ok, err)
	}
	if err := c.FlushAll(ctx, 0); err != nil {
		t.Fatalf("flush_all as a member: %v", err)
	}
	if _, ok, err := c.Get(ctx, []byte("k"), GetOptions{}); err != nil || ok {
		t.Fatalf("get after flush_all: %v %v", ok, err)
	}

	t.Run("wrong secret", func(t *testing.T) {
		c := newClient(t, Config{Addr: addr, Handshake: outsider.Client})
		if _, _, err := c.Get(ctx, []byte("k"), GetOptions{}); !errors.Is(err, ErrHandshake) || !errors.Is(err, peerauth.ErrRefused) {
			t.Fatalf("get: %v", err)
		}
		if err := c.FlushAll(ctx, 0); !errors.Is(err, ErrHandshake) {
			t.Fatalf("flush_all: %v", err)
		}
		if err := c.Dump(ctx, []byte{0xff}, 0, func([]byte, Item) error { return nil }); !errors.Is(err, ErrHandshake) {
			t.Fatalf("dump: %v", err)
		}
	})
	t.Run("no handshake", func(t *testing.T) {
		c := newClient(t, Config{Addr: addr})
		if _, _, err := c.Get(ctx, []byte("k"), GetOptions{}); err == nil {
			t.Fatal("get without a handshake succeeded")
		}
	})
}

// A peer that accepts connections but never answers the handshake (a
// stopped process) times out as a connect does.
func TestHandshakeTimeout(t *testing.T) {
	member, err := peerauth.NewSecret([]byte("0123456789abcdef-cluster"))
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "127.0.0.1:0") // never accepts: the kernel's backlog does
	defer ln.Close()
	c := newClient(t, Config{Addr: ln.Addr().String(), Handshake: member.Client, DialTimeout: 100 * time.Millisecond})
	if _, _, err := c.Get(context.Background(), []byte("k"), GetOptions{}); !errors.Is(err, ErrTimeout) {
		t.Fatalf("get: %v, want ErrTimeout", err)
	}
}
