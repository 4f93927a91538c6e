package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// TransportOptions configures the client-tier transport of one endpoint.
type TransportOptions struct {
	// TLS, when set, makes the transport speak h2 over TLS (ALPN "h2" is
	// added to NextProtos); nil means h2c with prior knowledge.
	TLS *tls.Config
	// TLSFor, when set, replaces TLS: it chooses the TLS configuration of
	// each request (nil: h2c). Linkerd's client TLS belongs to the bound
	// name, not to the endpoint: with a per-service commonName
	// ("{service}.linkerd.io") several bound names reach one endpoint
	// (e.g. a node's incoming router) under different names. Connections
	// are pooled per distinct *tls.Config, so TLSFor must return the same
	// pointer for the same configuration; TLSByClient does.
	TLSFor func(req *http.Request) (*tls.Config, error)
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
	// InitialStreamWindowBytes is the receive window of each stream
	// (initialStreamWindowBytes; 0: net/http's default, 4 MiB).
	InitialStreamWindowBytes int
	// MaxHeaderListBytes bounds the response headers (maxHeaderListBytes;
	// 0: 10 MiB, net/http's default).
	MaxHeaderListBytes uint32
	// WrapConn, when set, wraps every TCP connection dialed, beneath TLS
	// (the router counts connections with it).
	WrapConn func(net.Conn) net.Conn
}

// dialer dials TCP connections for o, wrapped by o.WrapConn.
type dialer struct {
	d    *net.Dialer
	wrap func(net.Conn) net.Conn
}

func (d dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.d.DialContext(ctx, network, addr)
	if err != nil || d.wrap == nil {
		return c, err
	}
	return d.wrap(c), nil
}

// Transport is the HTTP/2 transport of one endpoint: multiplexed streams
// over one connection, a second only when the endpoint's
// MAX_CONCURRENT_STREAMS is reached. It implements router.Transport.
//
// It is net/http's HTTP/2 client restricted to HTTP/2 (h2c with prior
// knowledge, or TLS with ALPN h2): x/net's http2.Transport, which it
// bundles, is deprecated in its favour.
//
// Errors are typed for the router: a failed dial or TLS handshake is a
// *net.OpError with Op "dial" (router.ConnectError), and a request the
// endpoint refused before processing it (REFUSED_STREAM, when net/http
// could not replay the body itself) is an *UnsentError, retryable.
type Transport struct {
	o      TransportOptions
	single *http.Transport // without TLSFor

	mu    sync.Mutex
	byTLS map[*tls.Config]*http.Transport // with TLSFor; nil key: h2c
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
	t := &Transport{o: o}
	if o.TLSFor == nil {
		t.single = newHTTPTransport(o, o.TLS)
	} else {
		t.byTLS = map[*tls.Config]*http.Transport{}
	}
	return t
}

// newHTTPTransport returns a pool speaking HTTP/2 only: over TLS with
// tlsConf, else h2c.
func newHTTPTransport(o TransportOptions, tlsConf *tls.Config) *http.Transport {
	d := dialer{d: &net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}, wrap: o.WrapConn}
	var protos http.Protocols
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		DisableCompression:     true,
		IdleConnTimeout:        o.IdleTimeout,
		MaxResponseHeaderBytes: int64(o.MaxHeaderListBytes),
		Protocols:              &protos,
		HTTP2: &http.HTTP2Config{
			MaxReadFrameSize:          int(o.MaxFrameBytes),
			MaxDecoderHeaderTableSize: int(o.HeaderTableBytes),
			MaxEncoderHeaderTableSize: int(o.HeaderTableBytes),
			SendPingTimeout:           o.PingInterval,
			PingTimeout:               o.PingTimeout,
			MaxReceiveBufferPerStream: o.InitialStreamWindowBytes,
		},
	}
	if tlsConf == nil {
		protos.SetUnencryptedHTTP2(true)
		return t
	}
	protos.SetHTTP2(true)
	cfg := tlsConf.Clone()
	cfg.NextProtos = []string{nextProtoH2}
	t.TLSClientConfig = cfg
	t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialTLS(ctx, d, network, addr, cfg, o.ConnectTimeout)
	}
	return t
}

// pool returns the connection pool of req and whether it speaks TLS.
func (t *Transport) pool(req *http.Request) (*http.Transport, bool, error) {
	if t.single != nil {
		return t.single, t.o.TLS != nil, nil
	}
	cfg, err := t.o.TLSFor(req)
	if err != nil {
		return nil, false, fmt.Errorf("client TLS for %s: %w", req.Header.Get(proxy.HeaderDstClient), err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.byTLS[cfg]
	if !ok {
		p = newHTTPTransport(t.o, cfg)
		t.byTLS[cfg] = p
	}
	return p, cfg != nil, nil
}

// TLSByClient returns a TLSFor that chooses a request's TLS
// configuration by its bound name, the l5d-dst-client header the router's
// bound tier sets: forClient is called once per bound name (nil, nil for
// no TLS), and its answer is reused, so that every request of a bound
// name shares its connections.
func TLSByClient(forClient func(bound string) (*tls.Config, error)) func(*http.Request) (*tls.Config, error) {
	var cache sync.Map // bound name → *tls.Config
	return func(req *http.Request) (*tls.Config, error) {
		id := req.Header.Get(proxy.HeaderDstClient)
		if v, ok := cache.Load(id); ok {
			return v.(*tls.Config), nil
		}
		cfg, err := forClient(id)
		if err != nil {
			return nil, err
		}
		v, _ := cache.LoadOrStore(id, cfg)
		return v.(*tls.Config), nil
	}
}

const nextProtoH2 = "h2"

// dialTLS connects to addr and completes a TLS handshake that must
// negotiate h2. Every failure is reported as a dial error: the request
// has not been written.
func dialTLS(ctx context.Context, d dialer, network, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	tc, err := tlsconf.DialTLS(ctx, d, network, addr, cfg, timeout)
	if err != nil {
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != nextProtoH2 {
		tc.Close()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: tc.RemoteAddr(),
			Err: fmt.Errorf("the endpoint did not agree to HTTP/2 over TLS (ALPN negotiated %q, want \"h2\")", p)}
	}
	return tc, nil
}

// RoundTrip sends req to the endpoint named by req.URL.Host.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	p, useTLS, err := t.pool(req)
	if err != nil {
		return nil, err
	}
	if useTLS && req.URL.Scheme != "https" {
		// :scheme says how the request reached the endpoint.
		u := *req.URL
		u.Scheme = "https"
		r2 := *req
		r2.URL = &u
		req = &r2
	}
	resp, err := p.RoundTrip(req)
	if err != nil {
		return nil, classifyTransportError(err)
	}
	return resp, nil
}

// CloseIdleConnections implements router.Transport.
func (t *Transport) CloseIdleConnections() {
	if t.single != nil {
		t.single.CloseIdleConnections()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.byTLS {
		p.CloseIdleConnections()
	}
}

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

// classifyTransportError types the errors of net/http's HTTP/2 client.
// Its stream errors are of an unexported type; their text has been
// "stream error: stream ID <n>; <CODE>[; <cause>]" since Go 1.6, and
// the code is all this needs.
func classifyTransportError(err error) error {
	msg := err.Error()
	i := strings.Index(msg, "stream error: stream ID ")
	if i < 0 {
		return err
	}
	rest := msg[i+len("stream error: stream ID "):]
	_, code, ok := strings.Cut(rest, "; ")
	if !ok {
		return err
	}
	code, _, _ = strings.Cut(code, ";")
	if code == "REFUSED_STREAM" {
		return &UnsentError{Err: err}
	}
	return &StreamResetError{Code: code, Err: err}
}
