package testutil

import (
	"bufio"
	"net"
	"strings"
	"time"
)

// TextLines sends req to addr on a fresh connection and returns the first
// lines reply lines, without "\r\n".
func TextLines(addr, req string, lines int) ([]string, error) {
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := nc.Write([]byte(req)); err != nil {
		return nil, err
	}
	br := bufio.NewReader(nc)
	out := make([]string, 0, lines)
	for range lines {
		l, err := br.ReadString('\n')
		if err != nil {
			return out, err
		}
		out = append(out, strings.TrimSuffix(l, "\r\n"))
	}
	return out, nil
}
