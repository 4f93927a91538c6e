package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/linnet-mesh/linnet/internal/proxy"
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
	// (default 10 minutes).
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// Server is an h2 router server: an http.Server set up for HTTP/2.
type Server struct {
	// HTTP is the underlying server; Shutdown and Close drain and stop it.
	HTTP *http.Server
	tls  *tls.Config
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
	s := &Server{HTTP: srv}
	if o.TLS != nil {
		protos.SetHTTP2(true)
		s.tls = o.TLS.Clone()
		s.tls.NextProtos = appendMissing(s.tls.NextProtos, http2.NextProtoTLS, "http/1.1")
		if get := s.tls.GetConfigForClient; get != nil {
			// ALPN is negotiated with the config GetConfigForClient
			// returns (tlsconf's, resolved per handshake for reloads):
			// it must offer h2 too. Building it with NextProtos
			// {"h2", "http/1.1"} avoids the per-handshake clone.
			s.tls.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				c, err := get(hi)
				if err != nil || c == nil || containsString(c.NextProtos, http2.NextProtoTLS) {
					return c, err
				}
				c = c.Clone()
				c.NextProtos = appendMissing(c.NextProtos, http2.NextProtoTLS, "http/1.1")
				return c, nil
			}
		}
		srv.Handler = h
	} else {
		protos.SetUnencryptedHTTP2(true)
		up := &http2.Server{
			MaxConcurrentStreams:      o.MaxConcurrentStreams,
			MaxReadFrameSize:          uint32(o.MaxFrameBytes),
			MaxDecoderHeaderTableSize: uint32(o.HeaderTableBytes),
			MaxEncoderHeaderTableSize: uint32(o.HeaderTableBytes),
			IdleTimeout:               o.IdleTimeout,
		}
		srv.Handler = &upgrader{srv: srv, h2: up, next: h}
	}
	srv.Protocols = &protos
	return s
}

// appendMissing returns ps with each of add that it lacks appended, in a
// new slice.
func appendMissing(ps []string, add ...string) []string {
	out := append([]string(nil), ps...)
	for _, a := range add {
		found := false
		for _, p := range out {
			found = found || p == a
		}
		if !found {
			out = append(out, a)
		}
	}
	return out
}

// Serve accepts connections on ln (wrapped in TLS when configured) until
// the server is shut down. The tls.Config is consulted per handshake, so
// a tlsconf.Server reload applies to new connections.
func (s *Server) Serve(ln net.Listener) error {
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	return s.HTTP.Serve(ln)
}

// Shutdown stops accepting and waits for in-flight streams (GOAWAY is sent
// to HTTP/2 clients) until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error { return s.HTTP.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.HTTP.Close() }

// upgrader serves the cleartext HTTP/1.1 Upgrade to h2c (RFC 7540 §3.2;
// RFC 9113 deprecates it, but Linkerd's h2 servers accepted it, and curl
// --http2 uses it). Prior-knowledge h2c is handled by net/http itself.
type upgrader struct {
	srv  *http.Server
	h2   *http2.Server
	next http.Handler
}

func (u *upgrader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || !isH2CUpgrade(r.Header) {
		u.next.ServeHTTP(w, r)
		return
	}
	settings, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(r.Header.Get("Http2-Settings"), "="))
	// The upgrade request becomes stream 1 and must have been read whole
	// before the connection switches; rather than buffer a body, requests
	// with one are served over HTTP/1.1 (a server may ignore Upgrade).
	if err != nil || r.ContentLength != 0 {
		u.next.ServeHTTP(w, r)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		u.next.ServeHTTP(w, r)
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	for _, k := range [...]string{"Connection", "Upgrade", "Http2-Settings"} {
		delete(r.Header, k)
	}
	r.Body = http.NoBody
	u.h2.ServeConn(&bufferedConn{Conn: conn, r: brw.Reader}, &http2.ServeConnOpts{
		Context:        r.Context(),
		BaseConfig:     u.srv,
		Handler:        u.next,
		UpgradeRequest: r,
		Settings:       settings,
	})
}

// isH2CUpgrade reports whether h asks for h2c: Upgrade lists h2c,
// Connection lists Upgrade and HTTP2-Settings, and HTTP2-Settings is
// present.
func isH2CUpgrade(h http.Header) bool {
	return proxy.HasToken(h["Upgrade"], "h2c") &&
		proxy.HasToken(h["Connection"], "upgrade") &&
		proxy.HasToken(h["Connection"], "http2-settings") &&
		len(h["Http2-Settings"]) == 1
}

// bufferedConn reads first what the HTTP/1.1 server had already buffered
// (the client preface may follow the upgrade request immediately).
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
