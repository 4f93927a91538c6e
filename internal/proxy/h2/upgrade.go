//lint:file-ignore SA1019 net/http has no API to serve a connection that
// was upgraded from HTTP/1.1 (RFC 7540 §3.2), so this file keeps x/net's
// http2.Server.ServeConn for the h2c Upgrade; everything else uses
// net/http's own HTTP/2.

package h2

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/http2"

	"github.com/linnet-mesh/linnet/internal/proxy"
)

// newUpgrader returns next wrapped with h2c Upgrade support.
func newUpgrader(srv *http.Server, next http.Handler, o ServerOptions) *upgrader {
	return &upgrader{srv: srv, next: next, h2: &http2.Server{
		MaxConcurrentStreams:      o.MaxConcurrentStreams,
		MaxReadFrameSize:          uint32(o.MaxFrameBytes),
		MaxDecoderHeaderTableSize: uint32(o.HeaderTableBytes),
		MaxEncoderHeaderTableSize: uint32(o.HeaderTableBytes),
		IdleTimeout:               o.IdleTimeout,
	}}
}

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
