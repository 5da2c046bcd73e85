package protocol

import (
	"reflect"
	"testing"
)

// encodable is a meta command AppendTo can write.
type encodable interface {
	Command
	AppendTo([]byte) []byte
}

// withoutFlags copies a meta command with its token record dropped:
// AppendTo writes the typed fields, so only they survive a round trip.
func withoutFlags(c Command) Command {
	switch c := c.(type) {
	case *MetaGet:
		m := *c
		m.Flags = nil
		return &m
	case *MetaSet:
		m := *c
		m.Flags = nil
		return &m
	case *MetaDelete:
		m := *c
		m.Flags = nil
		return &m
	case *MetaArith:
		m := *c
		m.Flags = nil
		return &m
	}
	return nil
}

// checkRoundTrip encodes c, parses the encoding as a peer port does and
// requires the same typed command back, the whole input consumed.
func checkRoundTrip(t *testing.T, c encodable) {
	t.Helper()
	enc := c.AppendTo(nil)
	got, n, err := parseAny(enc, true)
	if err != nil || n != len(enc) {
		t.Fatalf("parse %q: %v (%d of %d bytes)", enc, err, n, len(enc))
	}
	if want, got := withoutFlags(c), withoutFlags(got); !reflect.DeepEqual(got, want) {
		t.Fatalf("%q parses as\n%s\nwant\n%s", enc, show(got), show(want))
	}
}

// TestMetaAppendToRoundTrip: hand-built commands with every flag a peer
// client sends come back from the parser as built. Derived fields (Op,
// Decr, ma's default Delta) are set as the parser derives them.
func TestMetaAppendToRoundTrip(t *testing.T) {
	for name, c := range map[string]encodable{
		"mg every flag": &MetaGet{Key: bs("k"), MetaOptions: MetaOptions{
			HasTTL: true, TTL: -1, NoBump: true, HasVivify: true, VivifyTTL: 30,
			HasRecache: true, RecacheTTL: 5, ReturnHit: true, ReturnLastAccess: true,
			HasEpoch: true, ReturnValue: true, ReturnClientFlag: true, ReturnCAS: true,
			ReturnTTL: true, HasOpaque: true, Opaque: bs("4294967295"),
		}},
		"mg quiet batch": &MetaGet{Key: bs("k"), MetaOptions: MetaOptions{
			HasTTL: true, TTL: 1 << 30, ReturnValue: true, ReturnClientFlag: true,
			ReturnCAS: true, ReturnTTL: true, Quiet: true, HasOpaque: true, Opaque: bs("0"),
		}},
		"ms binary key every flag": &MetaSet{Key: bs("a b\x00"), Data: bs("v\r\nv"), Op: OpAppend, MetaOptions: MetaOptions{
			Base64: true, ReturnCAS: true, HasClientFlags: true, ClientFlags: 1<<32 - 1,
			HasTTL: true, TTL: 2147483647, HasCAS: true, CAS: 1<<64 - 1, Invalidate: true,
			Mode: 'A', HasNewCAS: true, NewCAS: 9, HasVivify: true, VivifyTTL: -1,
			HasEpoch: true, Epoch: 3, HasSeq: true, Seq: 12, HasOpaque: true, Opaque: bs("7"),
		}},
		"ms cas empty value": &MetaSet{Key: bs("k"), Data: bs(""), Op: OpCAS, MetaOptions: MetaOptions{
			ReturnCAS: true, HasCAS: true, CAS: 5, Invalidate: true, HasOpaque: true, Opaque: bs("1"),
		}},
		"md every flag": &MetaDelete{Key: bs("k"), MetaOptions: MetaOptions{
			HasCAS: true, CAS: 4, Invalidate: true, HasTTL: true, TTL: 60, HasNewCAS: true, NewCAS: 8,
			HasEpoch: true, Epoch: 1<<64 - 1, HasSeq: true, Seq: 5, HasOpaque: true, Opaque: bs("2"),
		}},
		"ma every flag": &MetaArith{Key: bs("n"), Decr: true, MetaOptions: MetaOptions{
			Mode: 'D', Delta: 0, HasVivify: true, VivifyTTL: 30, Initial: 7, HasTTL: true, TTL: 90,
			HasCAS: true, CAS: 3, HasNewCAS: true, NewCAS: 4, ReturnValue: true, ReturnCAS: true,
			ReturnTTL: true, HasOpaque: true, Opaque: bs("9"),
		}},
		"ma default delta": &MetaArith{Key: bs("n"), MetaOptions: MetaOptions{Delta: 1, ReturnValue: true}},
	} {
		t.Run(name, func(t *testing.T) { checkRoundTrip(t, c) })
	}
}

// TestMetaAppendToMode: without Mode, the M token follows Op (ms) and
// Decr (ma), so a command built from them means the same on the wire.
func TestMetaAppendToMode(t *testing.T) {
	for _, op := range []StoreOp{OpSet, OpAdd, OpReplace, OpAppend, OpPrepend} {
		enc := (&MetaSet{Key: bs("k"), Data: bs("v"), Op: op}).AppendTo(nil)
		if got, _, err := parseAny(enc, true); err != nil || got.(*MetaSet).Op != op {
			t.Errorf("op %v: %q parses as %s, %v", op, enc, show(got), err)
		}
	}
	for _, decr := range []bool{false, true} {
		enc := (&MetaArith{Key: bs("n"), Decr: decr, MetaOptions: MetaOptions{Delta: 1}}).AppendTo(nil)
		if got, _, err := parseAny(enc, true); err != nil || got.(*MetaArith).Decr != decr {
			t.Errorf("decr %v: %q parses as %s, %v", decr, enc, show(got), err)
		}
	}
}

// TestMetaAppendToOrder: the line as a peer sees it. T and N come before
// t, so t reports the TTL they set, and T before N, so an item N creates
// keeps the N TTL.
func TestMetaAppendToOrder(t *testing.T) {
	m := &MetaGet{Key: bs("k"), MetaOptions: MetaOptions{
		ReturnTTL: true, HasVivify: true, VivifyTTL: 30, HasTTL: true, TTL: 60,
		HasOpaque: true, Opaque: bs("1"), ReturnValue: true,
	}}
	if got, want := string(m.AppendTo(nil)), "mg k T60 N30 v t O1\r\n"; got != want {
		t.Fatalf("AppendTo = %q, want %q", got, want)
	}
}

// FuzzMetaRoundTrip: whatever parses as mg, ms, md or ma encodes to a
// line that parses as the same command.
func FuzzMetaRoundTrip(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, peer := range []bool{false, true} {
			cmd, _, err := parseAny(in, peer)
			if c, ok := cmd.(encodable); ok && err == nil {
				checkRoundTrip(t, c)
			}
		}
	})
}

func TestMetaAppendToAllocs(t *testing.T) {
	m := &MetaSet{Key: bs("k"), Data: bs("value"), MetaOptions: MetaOptions{
		ReturnCAS: true, HasTTL: true, TTL: 60, HasOpaque: true, Opaque: bs("12"),
	}}
	buf := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { buf = m.AppendTo(buf[:0]) }); n != 0 {
		t.Fatalf("AppendTo allocates %v times", n)
	}
}
