package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"shoal/store"
)

// unreachable is a Cache whose writes fail as a router's do when no owner
// of the key answers; reads still come from a real store.
type unreachable struct{ Local }

var errNoOwner = errors.New("no owner of the key is reachable")

// Start fails every write (set, delete, incr/decr, touch) and reads from
// the store.
func (u unreachable) Start(_ context.Context, req *Request, _ func(*Request)) bool {
	if req.Op == OpGet {
		u.Do(req)
		return false
	}
	req.Res, req.N, req.Item, req.Err = 0, 0, store.Item{}, errNoOwner
	return false
}

// TestWriteErrorsAnswerServerError: a write the Cache cannot place gets
// memcached's SERVER_ERROR line (silent with noreply), and the connection
// goes on serving.
func TestWriteErrorsAnswerServerError(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, Config{}, unreachable{Local{st}})
	c := dial(t, addr)
	io.WriteString(c, "set a 0 0 1\r\nx\r\nset a 0 0 1 noreply\r\nx\r\ndelete a\r\nincr a 1\r\ntouch a 1\r\n"+
		"ms a 1\r\nx\r\nmd a q\r\nma a\r\nget a\r\nmn\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	want := []string{
		"SERVER_ERROR no owner of the key is reachable\r\n", // set
		"SERVER_ERROR no owner of the key is reachable\r\n", // delete (the noreply set said nothing)
		"SERVER_ERROR no owner of the key is reachable\r\n", // incr
		"SERVER_ERROR no owner of the key is reachable\r\n", // touch
		"SERVER_ERROR no owner of the key is reachable\r\n", // ms
		"SERVER_ERROR no owner of the key is reachable\r\n", // md q: errors are never quiet
		"SERVER_ERROR no owner of the key is reachable\r\n", // ma
		"END\r\n", // get: a miss
		"MN\r\n",
	}
	for i, w := range want {
		line, err := r.ReadString('\n')
		if err != nil || line != w {
			t.Fatalf("reply %d: %q, %v; want %q", i, line, err, w)
		}
	}
}

// TestNewNeedsItems: a Cache other than a Local is not the store the
// server reads itself (stats, cache_memlimit, listing): New refuses it
// without Config.Items, and a Local is its own.
func TestNewNeedsItems(t *testing.T) {
	st, err := store.New(store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, unreachable{Local{st}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a non-Local cache without Items: %v, want ErrConfig", err)
	}
	if _, err := New(Config{Items: st}, unreachable{Local{st}}); err != nil {
		t.Fatalf("with Items: %v", err)
	}
	srv, err := New(Config{}, Local{st})
	if err != nil {
		t.Fatalf("a Local: %v", err)
	}
	if srv.items != Items(st) || srv.remote {
		t.Fatalf("a Local: items %v remote %v, want its store and not remote", srv.items, srv.remote)
	}
}
