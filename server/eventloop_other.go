//go:build !linux

package server

import (
	"errors"
	"net"
)

var errNoEpoll = errors.New("server: event loop needs epoll (Linux)")

// loop is a stand-in where epoll is missing: newLoop always fails, so
// Config.EventLoop falls back to a goroutine per connection.
type loop struct {
	queued bool
	now    int64
}

func newLoop(*Server) (*loop, error) { return nil, errNoEpoll }
func (*loop) run()                   {}
func (*loop) parks() bool            { return false }
func (*loop) dropConns()             {}
func (*loop) wake()                  {}
func (*loop) stop()                  {}
func (*loop) add(*conn, int) bool    { return false }
func detach(net.Conn) (int, error)   { return -1, errNoEpoll }
func (*loop) handBack(*conn)         {}

func (*conn) pollInput() bool { return true }

// sendQueueOf is unknown without Linux's SIOCOUTQ: a chunk's write is
// judged by its start alone.
func sendQueueOf(net.Conn) int { return -1 }
