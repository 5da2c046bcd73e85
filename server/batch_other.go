//go:build !linux

package server

import "log/slog"

// batchOut sends nothing without Linux: no event loop parks a connection
// whose reply a Batch could hold.
type batchOut struct{}

func newBatchOut(*slog.Logger) batchOut { return batchOut{} }
func (*batchOut) ok() bool              { return false }
func (*batchOut) send(cs []*conn) []int32 {
	return make([]int32, len(cs))
}
func (*batchOut) close()        {}
func (c *conn) applySend(int32) { c.flush() }
