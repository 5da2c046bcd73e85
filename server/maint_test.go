package server

import (
	"bufio"
	"io"
	"regexp"
	"strings"
	"testing"
)

// TestListingItems: lru_crawler metadump lists every item in memcached's
// format (keys URI-encoded, "\n" after each line, END after all) and
// stats cachedump the items of one class, on both drivers (under a loop
// they run on a goroutine of their own).
func TestListingItems(t *testing.T) {
	for name, loop := range drivers {
		t.Run(name, func(t *testing.T) {
			_, addr := startDriver(t, loop, 1<<20)
			c := dial(t, addr)
			r := bufio.NewReader(c)
			io.WriteString(c, "set plain 3 0 1\r\na\r\nset we%ird:key 0 100 2\r\nbb\r\n")
			for range 2 {
				if line, _ := r.ReadString('\n'); line != "STORED\r\n" {
					t.Fatalf("set: %q", line)
				}
			}
			io.WriteString(c, "lru_crawler metadump all\r\n")
			line := regexp.MustCompile(`^key=(\S+) exp=(-?\d+) la=\d+ cas=\d+ fetch=no cls=(\d+) size=\d+\n$`)
			got := map[string]string{}
			var cls string
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if l == "END\r\n" {
					break
				}
				m := line.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("metadump line %q", l)
				}
				got[m[1]] = m[2]
				cls = m[3]
			}
			if len(got) != 2 || got["plain"] != "-1" || got["we%25ird%3Akey"] == "-1" || got["we%25ird%3Akey"] == "" {
				t.Fatalf("metadump: %v", got)
			}
			io.WriteString(c, "stats cachedump "+cls+" 0\r\n")
			var items []string
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if l == "END\r\n" {
					break
				}
				items = append(items, l)
			}
			all := strings.Join(items, "")
			if !strings.Contains(all, "ITEM plain [1 b; 0 s]\r\n") || !strings.Contains(all, "ITEM we%ird:key [2 b; ") {
				t.Fatalf("cachedump %s: %q", cls, all)
			}
		})
	}
}
