package peer

import (
	"errors"
	"testing"
)

// TestPoolShares: two users of one address get the same Client, which
// stays open until the second lets it go; another address gets its own;
// a Client made after the last Put is a new one.
func TestPoolShares(t *testing.T) {
	addr := serveShoal(t, listen(t, "127.0.0.1:0"))
	p := NewPool(Config{})
	a, err := p.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two Gets of one address: two Clients, want one shared")
	}
	other, err := p.Get("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Fatal("another address shares the Client")
	}
	p.Put("127.0.0.1:1")
	p.Put(addr)
	if _, _, err := b.Set(bg, []byte("k"), []byte("v"), SetOptions{}); err != nil {
		t.Fatalf("set after one of two Puts: %v, want the Client still open", err)
	}
	p.Put(addr)
	if _, _, err := b.Set(bg, []byte("k"), []byte("v"), SetOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("set after the last Put: %v, want ErrClosed", err)
	}
	c, err := p.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Put(addr)
	if c == a {
		t.Fatal("Get after the last Put returned the closed Client")
	}
	p.Put("never got") // no effect
}
