package h2

import (
	"net"
	"runtime"
)

// Write batching for the server side of HTTP/2 connections.
//
// net/http's HTTP/2 server writes frames into a buffer from one goroutine
// per connection and flushes it, with a write system call, whenever its
// queue of frames runs empty; frames queued while a flush is in progress
// go out together with the next one. On a busy router the queue is rarely
// given the time to fill: the flush runs as soon as it is started, and
// each stream's response costs a system call of its own (30% of the h2
// router's CPU under h2load -c16 -m8 was in those writes).
//
// yieldConn's Write first yields the processor once (runtime.Gosched), so
// that the handlers already runnable deliver their frames to the queue
// before the write, and they leave together in the next flush. An idle
// process resumes the write at once; a busy one trades a few microseconds
// of latency for fewer writes (docs/performance.md, "HTTP/2").

// yieldConn is a server connection whose writes yield first.
type yieldConn struct{ net.Conn }

func (c yieldConn) Write(p []byte) (int, error) {
	runtime.Gosched()
	return c.Conn.Write(p)
}

// CloseWrite half-closes the connection when the underlying one can, as
// net/http's HTTP/1.1 server does before closing a connection it ends.
func (c yieldConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// yieldListener accepts yieldConns.
type yieldListener struct{ net.Listener }

func (l yieldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return yieldConn{c}, nil
}
