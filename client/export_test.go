package client

import "errors"

// Apply swaps in info as if a node at from had served it.
func (s *Selector) Apply(info Info, from string) error { return s.apply(info, from) }

// MarkDown marks addr down as a failed connection would.
func (s *Selector) MarkDown(addr string) { s.markDown(addr, errors.New("test")) }
