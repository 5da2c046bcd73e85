package server

import (
	"strconv"
	"strings"
	"testing"
)

// TestDetailPrefixesBounded: with stats detail on, a client inventing a
// new prefix per key does not grow the counts without end; the prefixes
// counted first keep counting.
func TestDetailPrefixesBounded(t *testing.T) {
	var d detail
	d.delim = ':'
	d.on.Store(true)
	for i := range 3 * maxPrefixes {
		d.count([]byte("p"+strconv.Itoa(i)+":k"), prefixSet, false)
	}
	d.count([]byte("p0:k"), prefixGet, true)
	if n := len(d.byPrefix); n != maxPrefixes {
		t.Fatalf("%d prefixes counted, want %d", n, maxPrefixes)
	}
	if out := string(d.dump(nil)); !strings.Contains(out, "PREFIX p0 get 1 hit 1 set 1 del 0\r\n") {
		t.Fatalf("p0 not counted on: %.200s", out)
	}
}
