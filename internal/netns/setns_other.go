//go:build !linux

package netns

import "errors"

// setns: network namespaces are Linux's (New fails before any Dial
// elsewhere: it runs ip netns).
func setns(uintptr) error { return errors.New("netns: network namespaces need Linux") }
