package takeover

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"shoal/etcdsync"
	"shoal/membership"
)

// fakeHost is a host with no view yet: recoveries find nothing to warm.
type fakeHost struct{ mu sync.Mutex }

func (h *fakeHost) Current() PeerView       { return noView{} }
func (h *fakeHost) ViewLock() sync.Locker   { return &h.mu }
func (h *fakeHost) Owe(string, int, uint64) {}

type noView struct{}

func (noView) View() *membership.View { return nil }
func (noView) Peer(string) Source     { return nil }

// noLapses is a registration that never lapsed.
type noLapses struct{}

func (noLapses) Lapses() uint64        { return 0 }
func (noLapses) Lapse() etcdsync.Lapse { return etcdsync.Lapse{} }

// TestNotePause: before the heartbeat's first tick nothing counts as a
// pause; a pause noted (as if the last tick were an hour ago) is
// recovered from once, by the first Awake, which reports false (its
// request must not run as it is) and runs what OnPause registered.
func TestNotePause(t *testing.T) {
	var tk Takeover
	tk.Init(&fakeHost{}, Config{Log: slog.New(slog.DiscardHandler), Membership: noLapses{}, PauseAfter: time.Second})
	ran := 0
	tk.OnPause(func() { ran++ })
	if !tk.LastTick().IsZero() || tk.Recovering() || !tk.Awake() {
		t.Fatalf("before any tick: last tick %v, recovering %v; want none, awake", tk.LastTick(), tk.Recovering())
	}
	tk.NotePause()
	if ago := time.Since(tk.LastTick()); ago < 59*time.Minute {
		t.Errorf("last tick %v ago after NotePause, want an hour", ago)
	}
	if !tk.Recovering() {
		t.Error("a noted pause is not waiting to be recovered from")
	}
	if tk.Awake() {
		t.Error("the first Awake after a noted pause reported awake")
	}
	if !tk.Awake() || tk.Recovering() {
		t.Error("still paused after the recovery")
	}
	if n := tk.Counters().Pauses; n != 1 || ran != 1 {
		t.Errorf("%d pauses recovered from, OnPause ran %d times; want 1, 1", n, ran)
	}
}
