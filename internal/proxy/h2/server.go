package h2

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
)

// ServerOptions are the h2 server keys (spec/config.md §4.3). Zero values
// keep Go's defaults.
type ServerOptions struct {
	// TLS, when set, serves HTTP/2 over TLS, negotiated with ALPN ("h2",
	// with "http/1.1" as fallback). Nil serves cleartext: h2c with prior
	// knowledge, the HTTP/1.1 Upgrade to h2c, and plain HTTP/1.1.
	TLS *tls.Config
	// MaxConcurrentStreams per connection (maxConcurrentStreamsPerConnection).
	MaxConcurrentStreams uint32
	// InitialStreamWindowBytes is the receive window of each stream
	// (initialStreamWindowBytes); the connection window is 16 times it.
	InitialStreamWindowBytes int
	// MaxFrameBytes is the largest frame a client may send (maxFrameBytes).
	MaxFrameBytes int
	// HeaderTableBytes is the HPACK table size (headerTableBytes).
	HeaderTableBytes int
	// MaxHeaderListBytes bounds a request's headers (maxHeaderListBytes;
	// default 1 MiB, net/http's).
	MaxHeaderListBytes int
	// IdleTimeout closes connections without streams for this long
	// (default 10 minutes; serverSession.idleTimeMs).
	IdleTimeout time.Duration
	// LifeTime, when positive, ends a connection once it is that old
	// (serverSession.lifeTimeMs): the response to the first request that
	// starts past that age carries Connection: close, which net/http turns
	// into a graceful GOAWAY on HTTP/2 (streams in flight finish, the
	// client opens a new connection for the next ones) and a close after
	// the response on HTTP/1.1. A connection that stays idle past that age
	// is closed by IdleTimeout, as any other.
	LifeTime time.Duration
	Logger   *slog.Logger
}

// Server is an h2 router server: an http.Server set up for HTTP/2.
type Server struct {
	// HTTP is the underlying server; Shutdown and Close drain and stop it.
	HTTP *http.Server
	tls  *tls.Config
	warm *warmStacks
}

// NewServer returns a server for h (normally a *Handler).
func NewServer(h http.Handler, o ServerOptions) *Server {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := &http.HTTP2Config{
		MaxConcurrentStreams:      int(o.MaxConcurrentStreams),
		MaxReadFrameSize:          o.MaxFrameBytes,
		MaxDecoderHeaderTableSize: o.HeaderTableBytes,
		MaxEncoderHeaderTableSize: o.HeaderTableBytes,
		MaxReceiveBufferPerStream: o.InitialStreamWindowBytes,
	}
	if o.InitialStreamWindowBytes > 0 {
		cfg.MaxReceiveBufferPerConnection = 16 * o.InitialStreamWindowBytes
	}
	// The protocols are completed below; the server reads them when it
	// starts serving.
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderListBytes,
		HTTP2:             cfg,
		Protocols:         &protos,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	if o.LifeTime > 0 {
		h = limitLife(srv, h, o.LifeTime)
	}
	warm := newWarmStacks(h)
	h = warm
	s := &Server{HTTP: srv, warm: warm}
	if o.TLS != nil {
		protos.SetHTTP2(true)
		s.tls = o.TLS.Clone()
		s.tls.NextProtos = appendMissing(s.tls.NextProtos, nextProtoH2, "http/1.1")
		if get := s.tls.GetConfigForClient; get != nil {
			// ALPN is negotiated with the config GetConfigForClient
			// returns (tlsconf's, resolved per handshake for reloads):
			// it must offer h2 too. Building it with NextProtos
			// {"h2", "http/1.1"} avoids the per-handshake clone.
			s.tls.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				c, err := get(hi)
				if err != nil || c == nil || slices.Contains(c.NextProtos, nextProtoH2) {
					return c, err
				}
				c = c.Clone()
				c.NextProtos = appendMissing(c.NextProtos, nextProtoH2, "http/1.1")
				return c, nil
			}
		}
		srv.Handler = h
	} else {
		protos.SetUnencryptedHTTP2(true)
		srv.Handler = newUpgrader(srv, h, o)
	}
	return s
}

// appendMissing returns ps with each of add that it lacks appended, in a
// new slice.
func appendMissing(ps []string, add ...string) []string {
	out := slices.Clone(ps)
	for _, a := range add {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// WrapListener returns ln as HTTP serves from it: wrapped in TLS when
// configured. s.HTTP.Serve(s.WrapListener(ln)) is Serve(ln), for callers
// that keep the *http.Server and its listener side by side.
func (s *Server) WrapListener(ln net.Listener) net.Listener {
	ln = yieldListener{ln}
	if s.tls != nil {
		return tls.NewListener(ln, s.tls)
	}
	return ln
}

// Serve accepts connections on ln (wrapped in TLS when configured) until
// the server is shut down. The tls.Config is consulted per handshake, so
// a tlsconf.Server reload applies to new connections.
func (s *Server) Serve(ln net.Listener) error {
	return s.HTTP.Serve(s.WrapListener(ln))
}

// Shutdown stops accepting and waits for in-flight streams (GOAWAY is sent
// to HTTP/2 clients) until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.HTTP.Shutdown(ctx)
	s.warm.stop()
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	err := s.HTTP.Close()
	s.warm.stop()
	return err
}

// connBornKey is the context key of a connection's clock.Mono birth.
type connBornKey struct{}

// limitLife returns h wrapped to end its connections after life: the
// server's ConnContext stamps each connection's birth, and a request that
// starts past that age gets Connection: close on its response.
func limitLife(srv *http.Server, h http.Handler, life time.Duration) http.Handler {
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		return context.WithValue(ctx, connBornKey{}, clock.Mono())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if born, ok := r.Context().Value(connBornKey{}).(int64); ok && clock.Since(born) >= life {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
