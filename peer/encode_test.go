package peer

import "testing"

// TestEncodeMetaOnlyFlags: the flags a router forwards for meta-only
// options go on the wire as memcached spells them.
func TestEncodeMetaOnlyFlags(t *testing.T) {
	for name, tc := range map[string]struct {
		r    *request
		want string
	}{
		"get vivify recache detail": {
			&request{kind: kindGet, key: []byte("k"), get: GetOptions{Vivify: true, VivifyTTL: 30, RecacheBelow: 5, Detail: true}},
			"mg k N30 R5 h l v f c t O7\r\n",
		},
		"set new cas vivify": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{Mode: ModeAppend, NewCAS: 9, Vivify: true, VivifyTTL: -1}},
			"ms k 1 MA N-1 E9 c O7\r\nv\r\n",
		},
		"delete invalidate new cas": {
			&request{kind: kindDelete, key: []byte("k"), del: DeleteOptions{Invalidate: true, NewCAS: 9}},
			"md k I E9 O7\r\n",
		},
		"set origin": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{NewCAS: 9, Epoch: 3, Seq: 12}},
			"ms k 1 E9 Y3 Z12 c O7\r\nv\r\n",
		},
		"set epoch without seq": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{Epoch: 3}},
			"ms k 1 Y3 c O7\r\nv\r\n",
		},
		"set seq without epoch": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{Seq: 4}},
			"ms k 1 c O7\r\nv\r\n",
		},
		"delete origin": {
			&request{kind: kindDelete, key: []byte("k"), del: DeleteOptions{Epoch: 1<<64 - 1, Seq: 5}},
			"md k Y18446744073709551615 Z5 O7\r\n",
		},
		"arith zero delta new cas": {
			&request{kind: kindArith, key: []byte("k"), arith: ArithOptions{ZeroDelta: true, NewCAS: 9}},
			"ma k D0 E9 v c t O7\r\n",
		},
		"arith decr vivify touch": {
			// T before N: a counter N creates keeps the N TTL.
			&request{kind: kindArith, key: []byte("k"), arith: ArithOptions{Decr: true, Vivify: true, VivifyTTL: 30, Touch: true, TTL: 60}},
			"ma k MD T60 N30 v c t O7\r\n",
		},
		"get local only": {
			&request{kind: kindGet, key: []byte("k"), get: GetOptions{LocalOnly: true}},
			"mg k Y0 v f c t O7\r\n",
		},
		"get with room": {
			&request{kind: kindGet, key: []byte("k"), get: GetOptions{Room: 4096}},
			"mg k A4096 v f c t O7\r\n",
		},
		"set binary key": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{KeyBinary: true, TTL: 60}},
			"ms aw== 1 b T60 c O7\r\nv\r\n",
		},
		"multi touch": {
			&request{kind: kindMulti, keys: [][]byte{[]byte("a"), []byte("b c")}, get: GetOptions{Touch: true, TTL: 9}},
			"mg a T9 v f c t q O7\r\nmg YiBj b T9 v f c t q O8\r\nmn\r\n",
		},
	} {
		t.Run(name, func(t *testing.T) {
			tc.r.seq = 7
			if got := string(tc.r.encode(nil)); got != tc.want {
				t.Fatalf("encode = %q, want %q", got, tc.want)
			}
		})
	}
}

// BenchmarkEncode: the request bytes of a forwarded get and set, without
// the network; steady state allocates nothing.
func BenchmarkEncode(b *testing.B) {
	for name, r := range map[string]*request{
		"get": {kind: kindGet, key: []byte("bench:key"), get: GetOptions{Detail: true}},
		"set": {kind: kindSet, key: []byte("bench:key"), value: make([]byte, 100), set: SetOptions{TTL: 60, Flags: 3}},
	} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				r.seq++
				buf = r.encode(buf[:0])
			}
		})
	}
}
