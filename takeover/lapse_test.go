package takeover

import (
	"testing"
	"time"
)

// TestLapseKeepFrom: a lapse's drop keeps what came after the cut this
// node saw, or, when it saw none or only one after its lease was already
// lost, what came after etcd's last keepalive answer; never nothing when
// either is known.
func TestLapseKeepFrom(t *testing.T) {
	ack := time.UnixMilli(1_000_000)
	atAck := uint64(1_000_000) << 16
	for _, c := range []struct {
		name  string
		cutAt uint64
		since time.Time
		want  uint64
	}{
		{"nothing known", 0, time.Time{}, 0},
		{"only the cut seen", 5 << 16, time.Time{}, 5 << 16},
		{"no cut seen (gossip kept the others suspect)", 0, ack, atAck},
		{"peers cut before etcd", atAck - 3<<16, ack, atAck - 3<<16},
		{"a blip seen after the heal", atAck + 12_000<<16, ack, atAck},
	} {
		if got := lapseKeepFrom(c.cutAt, c.since); got != c.want {
			t.Errorf("%s: lapseKeepFrom(%d, %v) = %d, want %d", c.name, c.cutAt, c.since, got, c.want)
		}
	}
}
