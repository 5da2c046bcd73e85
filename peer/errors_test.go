package peer

import (
	"errors"
	"strings"
	"testing"

	"shoal/protocol"
)

// TestReplyErrorKinds: each error line a peer sends for a store outcome
// comes back errors.Is its sentinel and no other, still carrying the line
// as sent (the cluster answers its client from it); any other error line
// is a plain ErrReply.
func TestReplyErrorKinds(t *testing.T) {
	kinds := []error{ErrNonNumeric, ErrOutOfMemory, ErrTooLarge, ErrStaleEpoch, ErrNoDelta, ErrRefusedPaused, ErrRefusedNotOwner}
	set := func(c *Client) error {
		_, _, err := c.Set(bg, []byte("k"), []byte("v"), SetOptions{})
		return err
	}
	arith := func(c *Client) error {
		_, _, err := c.Arith(bg, []byte("k"), ArithOptions{})
		return err
	}
	for name, tc := range map[string]struct {
		line string // as the peer sends it, "\r\n" included
		call func(*Client) error
		want error // nil: no sentinel but ErrReply
	}{
		"ma non-numeric":     {protocol.ReplyNonNumeric, arith, ErrNonNumeric},
		"ma out of memory":   {protocol.ReplyMetaNoMemory, arith, ErrOutOfMemory},
		"ms out of memory":   {protocol.ReplyNoMemory, set, ErrOutOfMemory},
		"ms too large":       {protocol.ReplyTooLarge, set, ErrTooLarge},
		"ms stale epoch":     {protocol.ReplyStaleEpoch + "\r\n", set, ErrStaleEpoch},
		"ms paused":          {protocol.ReplyPaused + "\r\n", set, ErrRefusedPaused},
		"ms not owner":       {protocol.ReplyNotOwner + "\r\n", set, ErrRefusedNotOwner},
		"ma unvouched":       {protocol.ReplyUnvouched + "\r\n", arith, ErrRefusedUnvouched},
		"unknown server":     {"SERVER_ERROR something else\r\n", set, nil},
		"mentions too large": {"CLIENT_ERROR key too large\r\n", set, nil},
		"bare ERROR":         {protocol.ReplyError, arith, nil},
	} {
		t.Run(name, func(t *testing.T) {
			f := startFake(t, listen(t, "127.0.0.1:0"), func(string) []byte { return []byte(tc.line) })
			err := tc.call(newClient(t, Config{Addr: f.ln.Addr().String()}))
			var re *ReplyError
			if !errors.Is(err, ErrReply) || !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *ReplyError", err)
			}
			if want := strings.TrimSuffix(tc.line, "\r\n"); re.Line != want {
				t.Errorf("Line = %q, want %q", re.Line, want)
			}
			for _, k := range kinds {
				if errors.Is(err, k) != (k == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, k, !(k == tc.want))
				}
			}
		})
	}
}

// TestReplyErrorKindsFromServers: the lines the sentinels are classified
// by are the ones memcached and a shoal peer port really send.
func TestReplyErrorKindsFromServers(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c := newClient(t, Config{Addr: tg.start(t)})
			mustSet(t, c, "text", "abc", SetOptions{})
			if _, _, err := c.Arith(bg, []byte("text"), ArithOptions{}); !errors.Is(err, ErrNonNumeric) {
				t.Errorf("ma on text: %v, want ErrNonNumeric", err)
			}
			big := make([]byte, 2<<20) // over both servers' default 1 MiB item limit
			if _, _, err := c.Set(bg, []byte("big"), big, SetOptions{}); !errors.Is(err, ErrTooLarge) {
				t.Errorf("ms of 2 MiB: %v, want ErrTooLarge", err)
			}
			mustGet(t, c, "text", "abc") // the connection survived both
		})
	}
}
