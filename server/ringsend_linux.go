//go:build linux

package server

import (
	"log/slog"

	"golang.org/x/sys/unix"

	"shoal/internal/uring"
)

// ringSender sends the replies of several connections in one
// io_uring_enter: a loop's wake-up (sendAll) and a Batch's. Its zero value
// sends nothing (each connection sends its own).
type ringSender struct {
	log  *slog.Logger
	ring *uring.Ring
	ops  []uring.Op
	res  []int32
}

// newRingSender makes a ringSender on r; nil r: one that sends nothing.
func newRingSender(r *uring.Ring, log *slog.Logger) ringSender {
	return ringSender{log: log, ring: r}
}

// newBatchSender is a Batch's ringSender, on a ring of its own.
func newBatchSender(log *slog.Logger) ringSender {
	r, err := uring.New(ringEntries)
	if err != nil {
		log.Info("peer replies sent with send(2), one call per connection", "err", err)
		return ringSender{}
	}
	return newRingSender(r, log)
}

func (o *ringSender) ok() bool { return o.ring != nil }

// send sends the replies of cs in one system call and returns each one's
// outcome, as an Op's Res; -ECANCELED for one not sent, which its
// connection then sends itself (applySend): a lone reply (send(2) costs
// no more than io_uring_enter), or after the ring broke.
func (o *ringSender) send(cs []*conn) []int32 {
	res := o.res[:0]
	if len(cs) < 2 || o.ring == nil {
		for range cs {
			res = append(res, -int32(unix.ECANCELED))
		}
		o.res = res
		return res
	}
	ops := o.ops[:0]
	for _, c := range cs {
		ops = append(ops, uring.Op{FD: int32(c.ev.fd), Buf: c.out[c.sent:]})
	}
	if err := o.ring.Send(ops); err != nil {
		o.log.Error("io_uring failed; sending with send(2) from now on", "err", err)
		o.close()
	}
	for i := range ops {
		res = append(res, ops[i].Res)
		ops[i] = uring.Op{}
	}
	o.ops, o.res = ops[:0], res
	return res
}

func (o *ringSender) close() {
	if o.ring != nil {
		o.ring.Close()
		o.ring = nil
	}
}
