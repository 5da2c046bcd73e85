package server

import (
	"context"

	"shoal/store"
)

// Op is what a Request does to its key.
type Op uint8

const (
	OpGet    Op = iota // Get: Key, Get, Dst → Item, Val, Res
	OpSet              // Set: Key, Value, Set → Res, Item, Err
	OpDelete           // Delete: Key, Del → Res, Item, Err
)

// Request is one key's get, set or delete on its way through an
// AsyncCache (Start), which may complete it later: the command, and then
// its outcome. A connection owns one Request, reused for each of its
// commands (no allocation per request); only one is in flight per
// connection.
//
// Key, Value, the options and Dst are the connection's (Value and Key
// alias its read buffer): they stay valid and unchanged until the request
// completes, and the Cache must not retain them after. Dst is the
// connection's value buffer, which Val may use: Val then belongs to the
// connection.
type Request struct {
	Op    Op
	Key   []byte
	Value []byte               // OpSet
	Get   *store.GetOptions    // OpGet; may be nil
	Set   *store.SetOptions    // OpSet
	Del   *store.DeleteOptions // OpDelete; may be nil
	Dst   []byte               // OpGet

	// The outcome: what Cache.Get (Set, Delete) returns. Val is set by
	// a get only, Err by a set or delete only.
	Item store.Item
	Val  []byte
	Res  store.Result
	Err  error
}

// Do runs req on c's synchronous methods and leaves the outcome in it:
// what a Cache that serves req here, without waiting, does in Start.
func (req *Request) Do(ctx context.Context, c Cache) {
	switch req.Op {
	case OpGet:
		req.Item, req.Val, req.Res = c.Get(ctx, req.Key, req.Get, req.Dst)
	case OpSet:
		req.Res, req.Item, req.Err = c.Set(ctx, req.Key, req.Value, req.Set)
	case OpDelete:
		req.Res, req.Item, req.Err = c.Delete(ctx, req.Key, req.Del)
	}
}

// String names the operation, for logs and test failures.
func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpSet:
		return "set"
	case OpDelete:
		return "delete"
	}
	return "op?"
}
