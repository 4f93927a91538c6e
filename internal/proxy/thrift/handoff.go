package thrift

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"time"

	"github.com/linnet-mesh/linnet/internal/router"
)

// ServeConn serves a connection accepted by another server (a thriftmux
// server handing over a plain Thrift client: Finagle's downgrade). br
// reads nc and may hold bytes already read from it. It returns when the
// connection is closed; Shutdown and Close apply to it as to the
// connections Serve accepts.
func (s *Server) ServeConn(nc net.Conn, br *bufio.Reader) {
	c := &serverConn{s: s, nc: nc, br: br, born: time.Now()}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		_ = nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	c.serve()
}

// Call routes one call that arrived on another session protocol
// (ThriftMux, on the connection nc) as the server routes its own: the
// same name, local dtab and trace (from msg.TTwitter, which clearContext
// trims), metrics and tracing. It returns the bytes to answer: the
// endpoint's reply, or a TApplicationException for a failure (err says
// which); nil for a oneway call.
func (s *Server) Call(ctx context.Context, nc net.Conn, msg *Message) (reply []byte, err error) {
	c := &serverConn{s: s, nc: nc}
	t0 := s.stats.Start()
	reply, err = c.route(ctx, msg)
	if err != nil {
		s.stats.End(t0, 0, router.FailureKind(err))
		if msg.Type == Oneway {
			return nil, err
		}
		return AppendException(nil, s.p.Codec.Protocol, msg.Header, c.errorMessage(err), excType(err)), err
	}
	s.stats.End(t0, http.StatusOK, "")
	return reply, nil
}

// Protocol is the Thrift protocol of the server's callers.
func (s *Server) Protocol() Protocol { return s.p.Codec.Protocol }
