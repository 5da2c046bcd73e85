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
			"ms k 1 c MA E9 N-1 O7\r\nv\r\n",
		},
		"delete invalidate new cas": {
			&request{kind: kindDelete, key: []byte("k"), del: DeleteOptions{Invalidate: true, NewCAS: 9}},
			"md k I E9 O7\r\n",
		},
		"set origin": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{NewCAS: 9, Epoch: 3, Seq: 12}},
			"ms k 1 c E9 Y3 Z12 O7\r\nv\r\n",
		},
		"set epoch without seq": {
			&request{kind: kindSet, key: []byte("k"), value: []byte("v"), set: SetOptions{Epoch: 3}},
			"ms k 1 c Y3 O7\r\nv\r\n",
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
	} {
		t.Run(name, func(t *testing.T) {
			tc.r.seq = 7
			if got := string(tc.r.encode(nil)); got != tc.want {
				t.Fatalf("encode = %q, want %q", got, tc.want)
			}
		})
	}
}
