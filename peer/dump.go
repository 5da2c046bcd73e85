package peer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"shoal/protocol"
)

// Dump streams every item the peer holds in the shards set in want (bit i
// of want[i/8], least significant first; see protocol.WantsShard) to fn,
// over a dedicated connection it closes afterwards: a dump may be the
// whole of a node's memory, and on a pooled connection it would hold up
// every request queued behind it. The peer must be a shoal peer port (sd
// is a peer extension). fn's key and it.Value are valid only during the
// call; it.TTL is the seconds left, -1 for never. After the items come
// the deletes the peer remembers in those shards (it.Deleted, it.CAS the
// delete's version). With since (not 0), only the items and deletes of
// that version or newer come, or an ErrNoDelta when the peer cannot vouch
// that they are all that changed since. An error from fn stops the dump
// and is returned as it is.
//
// ctx bounds the whole dump: its cancellation or deadline interrupts it
// (returning ctx.Err()). Besides, a peer that sends nothing for
// RequestTimeout fails it with ErrTimeout, and one that closes the
// connection before the end (EN) with ErrConnLost. An error line (such as
// "SERVER_ERROR dump not supported") is a *ReplyError.
func (c *Client) Dump(ctx context.Context, want []byte, since uint64, fn func(key []byte, it Item) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	nc, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	// Closing the connection is what interrupts a blocked read or write;
	// the callback must have finished before Dump returns (it owns nc).
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		nc.Close()
		close(done)
	})
	defer func() {
		if !stop() {
			<-done
		}
	}()
	err = c.dump(ctx, nc, want, since, fn)
	if ctx.Err() != nil && (errors.Is(err, ErrConnLost) || errors.Is(err, ErrTimeout)) {
		return ctx.Err()
	}
	return err
}

func (c *Client) dump(ctx context.Context, nc net.Conn, want []byte, since uint64, fn func(key []byte, it Item) error) error {
	nc.SetWriteDeadline(time.Now().Add(c.cfg.RequestTimeout))
	if _, err := nc.Write(protocol.AppendShardDumpRequest(nil, want, since)); err != nil {
		return lost(err)
	}
	rr := protocol.NewReplyReader(idleReader{nc, c.cfg.RequestTimeout}, c.cfg.MaxValueSize)
	var key []byte // decoded base64 keys
	for {
		rep, err := rr.Next()
		if err != nil {
			if errors.Is(err, protocol.ErrBadReply) || errors.Is(err, protocol.ErrValueTooLarge) {
				return fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: dump ended before EN", ErrConnLost)
			}
			return lost(err)
		}
		switch {
		case rep.Status == protocol.StatusEN:
			return nil
		case rep.Status.IsError():
			return replyError(rep)
		case rep.Status != protocol.StatusVA && rep.Status != protocol.StatusHD:
			return unexpected("sd", rep.Status)
		}
		k, ok := rep.Flag('k')
		if !ok {
			return fmt.Errorf("%w: sd item without a key", ErrProtocol)
		}
		if _, b64 := rep.Flag('b'); b64 {
			if key, err = base64.StdEncoding.AppendDecode(key[:0], k); err != nil {
				return fmt.Errorf("%w: sd key %q: %v", ErrProtocol, k, err)
			}
			k = key
		}
		it := Item{Value: rep.Value, TTL: -1, Deleted: rep.Status == protocol.StatusHD}
		_, it.KeyBinary = rep.Flag('b')
		it.CAS, _ = rep.Uint('c')
		if v, ok := rep.Int('t'); ok {
			it.TTL = v
		}
		f, _ := rep.Uint('f')
		it.Flags = uint32(f)
		// Replies already buffered would otherwise outrun a cancel.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k, it); err != nil {
			return err
		}
	}
}

// idleReader fails a read that gets no byte for d: a dump has no overall
// deadline of its own (it lasts as long as the data), but a silent peer
// must not hold it forever.
type idleReader struct {
	nc net.Conn
	d  time.Duration
}

func (r idleReader) Read(p []byte) (int, error) {
	r.nc.SetReadDeadline(time.Now().Add(r.d))
	return r.nc.Read(p)
}
