package peer

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"time"
)

// FlushAll sends "flush_all <delay>" (delay in seconds, 0: now) to the peer
// over a dedicated connection it closes afterwards: the classic reply (OK)
// carries no opaque, so it cannot share a pipelined connection.
func (c *Client) FlushAll(ctx context.Context, delay int64) error {
	if c.closed.Load() {
		return ErrClosed
	}
	nc, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	deadline := time.Now().Add(c.cfg.RequestTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc.SetDeadline(deadline)
	if _, err := nc.Write([]byte("flush_all " + strconv.FormatInt(delay, 10) + "\r\n")); err != nil {
		return lost(err)
	}
	line, err := bufio.NewReader(nc).ReadString('\n')
	if err != nil {
		return lost(err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line != "OK" {
		return newReplyError(line)
	}
	return nil
}
