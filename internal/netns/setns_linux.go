package netns

import "golang.org/x/sys/unix"

// setns moves the calling thread into the network namespace open as fd.
func setns(fd uintptr) error { return unix.Setns(int(fd), unix.CLONE_NEWNET) }
