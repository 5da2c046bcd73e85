package peer

import (
	"context"
	"fmt"

	"shoal/protocol"
)

func checkKey(key []byte) error {
	if !protocol.MetaKeyValid(key) {
		return ErrBadKey
	}
	return nil
}

func unexpected(cmd string, s protocol.ReplyStatus) error {
	return fmt.Errorf("%w: %s answered %v", ErrProtocol, cmd, s)
}

// Get reads key (mg <key> v f c t, with T for a touch). It reports false
// on a miss. Keys a meta line cannot carry as they are travel base64.
func (c *Client) Get(ctx context.Context, key []byte, opts GetOptions) (Item, bool, error) {
	if err := checkKey(key); err != nil {
		return Item{}, false, err
	}
	r := c.getRequest(kindGet)
	r.key, r.get = key, c.room(opts)
	abandoned, err := c.do(ctx, r)
	defer c.release(r, abandoned)
	if err != nil {
		return Item{}, false, err
	}
	switch r.status {
	case protocol.StatusVA:
		return r.item, true, nil
	case protocol.StatusEN:
		if opts.LocalOnly && r.item.CAS != 0 {
			return Item{CAS: r.item.CAS, Deleted: true}, false, nil // the peer's remembered delete
		}
		return Item{}, false, nil
	case protocol.StatusHD:
		if r.get.Room > 0 {
			return Item{Size: r.item.Size}, false, ErrNoRoom
		}
	}
	return Item{}, false, unexpected("mg", r.status)
}

// Set stores value under key (ms <key> <size> c F T C I M) and returns the
// outcome and, when stored, the item's new CAS.
func (c *Client) Set(ctx context.Context, key, value []byte, opts SetOptions) (Result, uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, 0, err
	}
	r := c.getRequest(kindSet)
	r.key, r.value, r.set = key, value, opts
	abandoned, err := c.do(ctx, r)
	defer c.release(r, abandoned)
	if err != nil {
		return 0, 0, err
	}
	res, err := result("ms", r.status)
	return res, r.item.CAS, err
}

// Delete removes key, or marks it stale with Invalidate (md <key> C I T).
func (c *Client) Delete(ctx context.Context, key []byte, opts DeleteOptions) (Result, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	r := c.getRequest(kindDelete)
	r.key, r.del = key, opts
	abandoned, err := c.do(ctx, r)
	defer c.release(r, abandoned)
	if err != nil {
		return 0, err
	}
	return result("md", r.status)
}

// Arith increments or decrements the counter at key (ma <key> v c t ...).
// A value that is not a number comes back as a *ReplyError
// ("CLIENT_ERROR cannot increment or decrement non-numeric value").
func (c *Client) Arith(ctx context.Context, key []byte, opts ArithOptions) (Counter, Result, error) {
	if err := checkKey(key); err != nil {
		return Counter{}, 0, err
	}
	r := c.getRequest(kindArith)
	r.key, r.arith = key, opts
	abandoned, err := c.do(ctx, r)
	defer c.release(r, abandoned)
	if err != nil {
		return Counter{}, 0, err
	}
	if r.status == protocol.StatusVA {
		return Counter{Value: r.num, CAS: r.item.CAS, TTL: r.item.TTL}, OK, nil
	}
	res, err := result("ma", r.status)
	return Counter{}, res, err
}

func result(cmd string, s protocol.ReplyStatus) (Result, error) {
	switch s {
	case protocol.StatusHD:
		return OK, nil
	case protocol.StatusNS:
		return NotStored, nil
	case protocol.StatusEX:
		return Exists, nil
	case protocol.StatusNF:
		return NotFound, nil
	}
	return 0, unexpected(cmd, s)
}

// GetMulti reads many keys in one write on one connection: a quiet mg per
// key (only hits answer) and an mn that ends the batch. It appends the
// hits to dst in key order, each with the index of its key; the values
// share one new buffer. An error line for one key fails the call with a
// *ReplyError after the batch completes; the hits are still returned.
func (c *Client) GetMulti(ctx context.Context, keys [][]byte, dst []Hit) ([]Hit, error) {
	return c.getMulti(ctx, keys, GetOptions{}, dst)
}

// TouchMulti is GetMulti that also sets the TTL of every key it finds, as
// GetOptions.TTL reads it (gat for many keys: mg T<ttl> per key). Hit TTLs
// are the new ones.
func (c *Client) TouchMulti(ctx context.Context, keys [][]byte, ttl int64, dst []Hit) ([]Hit, error) {
	return c.getMulti(ctx, keys, GetOptions{Touch: true, TTL: ttl}, dst)
}

// GetMultiWith is GetMulti with the options a batch carries: Touch and
// TTL (as TouchMulti), Admit, which bounds the values kept, and Room,
// which bounds each value the peer sends (a larger one comes back
// Dropped, with its Size, as one Admit refused); the others are ignored.
func (c *Client) GetMultiWith(ctx context.Context, keys [][]byte, opts GetOptions, dst []Hit) ([]Hit, error) {
	return c.getMulti(ctx, keys, GetOptions{Touch: opts.Touch, TTL: opts.TTL, Admit: opts.Admit, Room: opts.Room}, dst)
}

func (c *Client) getMulti(ctx context.Context, keys [][]byte, opts GetOptions, dst []Hit) ([]Hit, error) {
	if len(keys) == 0 {
		return dst, nil
	}
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return dst, err
		}
	}
	r := c.getRequest(kindMulti)
	r.keys, r.get = keys, c.room(opts)
	abandoned, err := c.do(ctx, r)
	defer c.release(r, abandoned)
	if abandoned {
		return dst, err
	}
	arena := r.arena
	r.arena = nil // the caller's now
	for _, h := range r.hits {
		if h.dropped {
			dst = append(dst, Hit{Index: h.index, Dropped: true, Size: h.end})
			continue
		}
		it := h.item
		it.Value = arena[h.off:h.end:h.end]
		dst = append(dst, Hit{Index: h.index, Item: it})
	}
	return dst, err
}
