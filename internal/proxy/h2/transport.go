package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
)

// TransportOptions configures the client-tier transport of one endpoint.
type TransportOptions struct {
	// TLS, when set, makes the transport speak h2 over TLS (ALPN "h2" is
	// added to NextProtos); nil means h2c with prior knowledge.
	TLS *tls.Config
	// ConnectTimeout bounds dialing and the TLS handshake (default 3s).
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection idle this long (default 60s).
	IdleTimeout time.Duration
	// PingInterval sends a PING on a connection that received nothing for
	// this long, and PingTimeout closes it when the PING is not answered,
	// so that a dead endpoint fails its streams instead of hanging them.
	// Defaults 30s and 10s.
	PingInterval, PingTimeout time.Duration
	// MaxFrameBytes is the largest frame the endpoint may send (client
	// maxFrameBytes; default 16KiB, the protocol minimum).
	MaxFrameBytes uint32
	// HeaderTableBytes is the HPACK table size (headerTableBytes).
	HeaderTableBytes uint32
	// MaxHeaderListBytes bounds the response headers (maxHeaderListBytes;
	// 0: 10MiB, x/net's default).
	MaxHeaderListBytes uint32
}

// Transport is the HTTP/2 transport of one endpoint: multiplexed streams
// over one connection, a second only when the endpoint's
// MAX_CONCURRENT_STREAMS is reached. It implements router.Transport.
//
// Errors are typed for the router: a failed dial or TLS handshake is a
// *net.OpError with Op "dial" (router.ConnectError), and a request the
// endpoint never processed (REFUSED_STREAM) is an *UnsentError,
// retryable. (x/net retries streams above a GOAWAY's last stream id by
// itself when the request body allows it.)
type Transport struct {
	t   *http2.Transport
	tls bool
}

// NewTransport returns the transport of one endpoint.
func NewTransport(o TransportOptions) *Transport {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 3 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 10 * time.Second
	}
	tr := &Transport{tls: o.TLS != nil}
	d := &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	var tlsConf *tls.Config
	if o.TLS != nil {
		tlsConf = o.TLS.Clone()
		if !containsString(tlsConf.NextProtos, http2.NextProtoTLS) {
			tlsConf.NextProtos = append([]string{http2.NextProtoTLS}, tlsConf.NextProtos...)
		}
	}
	tr.t = &http2.Transport{
		// h2c: the "TLS" dial of x/net is ours, and returns a plain TCP
		// connection when no TLS is configured.
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, d, network, addr, tlsConf, o.ConnectTimeout)
		},
		DisableCompression:        true,
		MaxReadFrameSize:          o.MaxFrameBytes,
		MaxDecoderHeaderTableSize: o.HeaderTableBytes,
		MaxEncoderHeaderTableSize: o.HeaderTableBytes,
		MaxHeaderListSize:         o.MaxHeaderListBytes,
		IdleConnTimeout:           o.IdleTimeout,
		ReadIdleTimeout:           o.PingInterval,
		PingTimeout:               o.PingTimeout,
	}
	return tr
}

// dial connects to addr and, with cfg, completes a TLS handshake that
// must negotiate h2. Every failure is reported as a dial error: the
// request has not been written.
func dial(ctx context.Context, d *net.Dialer, network, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	c, err := d.DialContext(ctx, network, addr)
	if err != nil || cfg == nil {
		return c, err
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(), Err: fmt.Errorf("TLS handshake: %w", err)}
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		tc.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: c.RemoteAddr(),
			Err: fmt.Errorf("the endpoint did not agree to HTTP/2 over TLS (ALPN negotiated %q, want \"h2\")", p)}
	}
	return tc, nil
}

// RoundTrip sends req to the endpoint named by req.URL.Host.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.tls && req.URL.Scheme != "https" {
		// :scheme says how the request reached the endpoint.
		u := *req.URL
		u.Scheme = "https"
		r2 := *req
		r2.URL = &u
		req = &r2
	}
	resp, err := t.t.RoundTrip(req)
	if err != nil {
		return nil, classifyTransportError(err)
	}
	return resp, nil
}

// CloseIdleConnections implements router.Transport.
func (t *Transport) CloseIdleConnections() { t.t.CloseIdleConnections() }

// UnsentError says the endpoint did not process the request (it refused
// the stream, or the connection went away before the stream was
// started), so it is safe to retry, even when not idempotent.
type UnsentError struct{ Err error }

func (e *UnsentError) Error() string {
	return "request not processed by the endpoint: " + e.Err.Error()
}

func (e *UnsentError) Unwrap() error { return e.Err }

// Retryable implements the proxy's retryable-error contract
// (l5d-retryable: true).
func (e *UnsentError) Retryable() bool { return true }

// StreamResetError says the endpoint reset the stream with Code (an
// HTTP/2 error code name such as CANCEL or INTERNAL_ERROR).
type StreamResetError struct {
	Code string
	Err  error
}

func (e *StreamResetError) Error() string { return "stream reset by the endpoint: " + e.Code }
func (e *StreamResetError) Unwrap() error { return e.Err }

// IsUnsent reports whether err says the request never reached the
// endpoint's application: a dial failure or an *UnsentError.
func IsUnsent(err error) bool {
	var ue *UnsentError
	var op *net.OpError
	return errors.As(err, &ue) || (errors.As(err, &op) && op.Op == "dial")
}

// classifyTransportError types the errors of x/net's transport.
func classifyTransportError(err error) error {
	var se http2.StreamError
	if errors.As(err, &se) {
		if se.Code == http2.ErrCodeRefusedStream {
			return &UnsentError{Err: err}
		}
		return &StreamResetError{Code: se.Code.String(), Err: err}
	}
	if errors.Is(err, http2.ErrNoCachedConn) {
		return &UnsentError{Err: err}
	}
	return err
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
