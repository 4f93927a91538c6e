package routerd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy/h2"
	"github.com/linnet-mesh/linnet/internal/tlsconf"
)

// tlsReloadInterval is how often the certificate files of servers and
// clients are checked for rotation (cert-manager and Vault agents rewrite
// them in place).
const tlsReloadInterval = 10 * time.Second

// ALPN offers: an http router speaks HTTP/1.1 only; an h2 router's server
// also accepts HTTP/1.1 over TLS, as Linkerd's does, and its client asks
// for h2 only.
var (
	alpnHTTP1    = []string{"http/1.1"}
	alpnH2Server = []string{"h2", "http/1.1"}
	alpnH2Client = []string{"h2"}
)

// clientTLSOptions maps a client `tls` block to tlsconf.
func clientTLSOptions(t *ClientTLS, nextProtos []string, log *slog.Logger) tlsconf.ClientOptions {
	o := tlsconf.ClientOptions{
		CommonName: t.CommonName, TrustCertsBundle: t.TrustCertsBundle, TrustCerts: t.TrustCerts,
		DisableValidation: t.DisableValidation, Protocols: t.Protocols, NextProtos: nextProtos,
		Logger: log,
	}
	if a := t.ClientAuth; a != nil {
		o.ClientCertPath, o.ClientKeyPath, o.ClientIntermediateCertsPath = a.CertPath, a.KeyPath, a.IntermediateCertsPath
	}
	return o
}

// newServerTLS builds the *tls.Config of a server `tls` block (nil when
// absent or disabled) and watches its files for rotation until ctx ends.
func newServerTLS(ctx context.Context, t *ServerTLS, nextProtos []string, log *slog.Logger) (*tls.Config, error) {
	if t == nil || !t.Enabled {
		return nil, nil
	}
	st, err := tlsconf.NewServer(tlsconf.ServerOptions{
		CertPath: t.CertPath, KeyPath: t.KeyPath, IntermediateCertsPath: t.IntermediateCertsPath,
		CACertPath: t.CACertPath, RequireClientAuth: t.RequireClientAuth, Protocols: t.Protocols,
		NextProtos: nextProtos,
	})
	if err != nil {
		return nil, err
	}
	go tlsconf.Watch(ctx, st, tlsReloadInterval, func(err error) {
		log.Warn("server TLS reload failed; keeping the previous certificate", "err", err)
	})
	return st.Config(), nil
}

// clientTLSChooser builds the TLSFor of a router's client tier: the TLS
// configuration of a request is the `tls` block of its bound name (the
// l5d-dst-client header), whose commonName has the {vars} of its
// io.l5d.static prefix already substituted. Identical blocks share one
// tlsconf.Client (and so one *tls.Config and one connection pool per
// endpoint); each is watched for certificate rotation until ctx ends.
type clientTLSChooser struct {
	ctx        context.Context
	forID      func(id dtab.Path) *ClientTLS
	nextProtos []string
	log        *slog.Logger

	mu      sync.Mutex
	clients map[string]*tlsconf.Client
}

func newClientTLSChooser(ctx context.Context, forID func(id dtab.Path) *ClientTLS, nextProtos []string, log *slog.Logger) func(*http.Request) (*tls.Config, error) {
	c := &clientTLSChooser{ctx: ctx, forID: forID, nextProtos: nextProtos, log: log, clients: map[string]*tlsconf.Client{}}
	return h2.TLSByClient(c.forBound)
}

func (c *clientTLSChooser) forBound(bound string) (*tls.Config, error) {
	id, err := dtab.ParsePath(bound)
	if err != nil {
		return nil, fmt.Errorf("bound name %q: %w", bound, err)
	}
	t := c.forID(id)
	if t == nil || !t.Enabled {
		return nil, nil
	}
	o := clientTLSOptions(t, c.nextProtos, c.log)
	key := fmt.Sprintf("%q %q %q %v %v %q %q %q %q", o.CommonName, o.TrustCertsBundle, o.TrustCerts, o.DisableValidation,
		o.Protocols, o.ClientCertPath, o.ClientKeyPath, o.ClientIntermediateCertsPath, o.NextProtos)
	c.mu.Lock()
	defer c.mu.Unlock()
	tc, ok := c.clients[key]
	if !ok {
		if tc, err = tlsconf.NewClient(o); err != nil {
			return nil, err
		}
		c.clients[key] = tc
		go tlsconf.Watch(c.ctx, tc, tlsReloadInterval, func(err error) {
			c.log.Warn("client TLS reload failed; keeping the previous certificates", "client", bound, "err", err)
		})
	}
	return tc.Config(nil)
}

// policyHasTLS reports whether any client of a policy can have a `tls`
// block: the global one, or any io.l5d.static entry.
func policyHasTLS[P any](p *Policy[P], global *ClientTLS) bool {
	if p.Kind != PolicyStatic {
		return global != nil && global.Enabled
	}
	for _, c := range p.Configs {
		if _, ok := c.raw.Get("tls"); ok {
			return true
		}
	}
	return false
}

// checkClientTLS reads the files of every client `tls` block of a policy
// whose commonName does not depend on the bound name, so that a missing
// or unreadable certificate fails Start (naming the block) instead of
// every request to those clients.
func checkClientTLS[P any](p *Policy[P], tlsOf func(*P) *ClientTLS, nextProtos []string) error {
	check := func(t *ClientTLS) error {
		if t == nil || !t.Enabled || len(config.TemplateVars(t.CommonName)) > 0 {
			return nil
		}
		_, err := tlsconf.NewClient(clientTLSOptions(t, nextProtos, slog.New(slog.DiscardHandler)))
		return err
	}
	if p.Kind != PolicyStatic {
		if err := check(tlsOf(&p.Global)); err != nil {
			return fmt.Errorf("client.tls: %w", err)
		}
		return nil
	}
	for i, c := range p.Configs {
		var probe P
		config.ApplyDefaults(&probe)
		if c.raw.Decode(&probe, "prefix") != nil {
			continue // refused when loaded
		}
		if err := check(tlsOf(&probe)); err != nil {
			return fmt.Errorf("client.configs[%d].tls (prefix %s): %w", i, c.Prefix, err)
		}
	}
	return nil
}

// tlsListener serves TLS on ln: each accepted connection completes its
// handshake within handshakeTimeout on its first read (in the serving
// goroutine, so that a slow client does not stall the accept loop).
type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

const handshakeTimeout = 10 * time.Second

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsServerConn{Conn: tls.Server(c, l.cfg)}, nil
}

type tlsServerConn struct {
	*tls.Conn
	once sync.Once
	err  error
}

func (c *tlsServerConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		c.err = c.Conn.HandshakeContext(ctx)
	})
	return c.err
}

func (c *tlsServerConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *tlsServerConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// serveAdminTLS makes the admin listener l serve TLS when admin.tls is
// set (HTTP/1.1 and h2, as net/http negotiates).
func serveAdminTLS(ctx context.Context, l *listener, t *ServerTLS, log *slog.Logger) error {
	cfg, err := newServerTLS(ctx, t, alpnH2Server, log)
	if err != nil || cfg == nil {
		return err
	}
	l.ln = tls.NewListener(l.ln, cfg)
	return nil
}
