//go:build !linux

package thrift

import "syscall"

// peekIdle cannot ask the socket here: an idle connection the endpoint
// closed is found when a call fails to be written on it (and requeued).
func peekIdle(syscall.RawConn) bool { return true }
