package thrift

import "syscall"

// peekIdle reports whether an idle socket is still open and has nothing
// to read, with a non-blocking MSG_PEEK: EOF, an error or unasked bytes
// mean the connection cannot carry a call.
func peekIdle(raw syscall.RawConn) bool {
	ok := false
	var b [1]byte
	err := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n <= 0 && err == syscall.EAGAIN // open, nothing to read
		return true
	})
	return err == nil && ok
}
