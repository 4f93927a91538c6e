package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// ServerOptions are the keys of a server `tls` block.
type ServerOptions struct {
	// CertPath is the PEM certificate (chain) of the server. Required.
	CertPath string
	// KeyPath is its PEM private key: PKCS#8 (what Linkerd 1 required),
	// PKCS#1 or SEC1. Required.
	KeyPath string
	// IntermediateCertsPath, if set, is a PEM bundle appended to the chain.
	IntermediateCertsPath string
	// CACertPath, if set, verifies client certificates; a client that
	// presents one must chain to it.
	CACertPath string
	// RequireClientAuth refuses clients without a valid certificate.
	RequireClientAuth bool
	// Protocols restricts the TLS versions ("TLSv1" ... "TLSv1.3").
	// Empty: TLS 1.2 and 1.3.
	Protocols []string
	// NextProtos are the ALPN protocols offered, most preferred first
	// (e.g. "h2", "http/1.1").
	NextProtos []string
}

// Server is a server TLS configuration whose files can be reloaded.
type Server struct {
	o      ServerOptions
	cur    atomic.Pointer[tls.Config]
	digest atomic.Pointer[[sha256.Size]byte] // of the files cur came from
	mu     sync.Mutex                        // serialises Reload
}

// NewServer reads the files of o and returns the server configuration.
func NewServer(o ServerOptions) (*Server, error) {
	if o.CertPath == "" {
		return nil, errors.New("tls: certPath is required")
	}
	if o.KeyPath == "" {
		return nil, errors.New("tls: keyPath is required")
	}
	if o.RequireClientAuth && o.CACertPath == "" {
		return nil, errors.New("tls: requireClientAuth needs caCertPath to verify client certificates")
	}
	s := &Server{o: o}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the certificate, key and CA files. On error the
// previous material stays in use and the error says which file failed.
func (s *Server) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Taken before reading: a write racing with this load leaves a stale
	// digest, so Watch loads again, rather than a fresh one over stale
	// material.
	d := digest(s.files())
	minV, maxV, err := versions(s.o.Protocols)
	if err != nil {
		return err
	}
	cert, err := loadKeyPair(s.o.CertPath, s.o.KeyPath, s.o.IntermediateCertsPath)
	if err != nil {
		return err
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   minV,
		MaxVersion:   maxV,
		NextProtos:   s.o.NextProtos,
	}
	if s.o.CACertPath != "" {
		pool, err := loadPool("caCertPath", s.o.CACertPath)
		if err != nil {
			return err
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if s.o.RequireClientAuth {
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	s.cur.Store(c)
	s.digest.Store(&d)
	return nil
}

// Config returns the configuration to serve with. It resolves the
// current material on every handshake, so it stays valid across reloads.
func (s *Server) Config() *tls.Config {
	base := s.cur.Load()
	return &tls.Config{
		// The outer config only needs what is consulted before
		// GetConfigForClient runs: ALPN for tls.Listener users that
		// inspect NextProtos, and the versions.
		NextProtos: base.NextProtos,
		MinVersion: base.MinVersion,
		MaxVersion: base.MaxVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load(), nil
		},
	}
}

// ClientOptions are the keys of a client `tls` block.
type ClientOptions struct {
	// CommonName is the name the server certificate must carry, also sent
	// as SNI. It may contain {var} placeholders, filled by Config's vars
	// (e.g. "{service}.linkerd.io"). Required unless DisableValidation.
	CommonName string
	// TrustCertsBundle is a PEM bundle of trusted CAs; TrustCerts the
	// deprecated list of PEM files. Both are pooled. When neither is set
	// the system roots are trusted.
	TrustCertsBundle string
	TrustCerts       []string
	// DisableValidation accepts any server certificate. It exists for
	// compatibility and is logged loudly: it makes TLS useless against an
	// active attacker.
	DisableValidation bool
	// ClientCertPath and ClientKeyPath (and IntermediateCertsPath) are the
	// certificate presented to servers that ask for one (clientAuth).
	ClientCertPath              string
	ClientKeyPath               string
	ClientIntermediateCertsPath string
	// Protocols restricts the TLS versions. Empty: TLS 1.2 and 1.3.
	Protocols []string
	// NextProtos are the ALPN protocols offered (e.g. "h2").
	NextProtos []string
	// Logger receives the disableValidation warning.
	Logger *slog.Logger
}

// Client is a client TLS configuration whose files can be reloaded.
type Client struct {
	o       ClientOptions
	cur     atomic.Pointer[clientMaterial]
	digest  atomic.Pointer[[sha256.Size]byte] // of the files cur came from
	mu      sync.Mutex
	configs sync.Map // server name → *tls.Config
}

type clientMaterial struct {
	roots *x509.CertPool // nil: system roots
	cert  *tls.Certificate
	minV  uint16
	maxV  uint16
}

// NewClient reads the files of o and returns the client configuration.
func NewClient(o ClientOptions) (*Client, error) {
	if o.CommonName == "" && !o.DisableValidation {
		return nil, errors.New("tls: commonName is required unless disableValidation is true")
	}
	if o.DisableValidation && o.ClientCertPath != "" {
		return nil, errors.New("tls: clientAuth cannot be combined with disableValidation")
	}
	if (o.ClientCertPath == "") != (o.ClientKeyPath == "") {
		return nil, errors.New("tls: clientAuth needs both certPath and keyPath")
	}
	if _, err := Expand(o.CommonName, nil); err != nil && !errors.Is(err, errUnknownVar) {
		return nil, fmt.Errorf("tls: commonName: %w", err)
	}
	c := &Client{o: o}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	if o.DisableValidation {
		log := o.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("TLS certificate validation is DISABLED for this client (tls.disableValidation: true): " +
			"connections are encrypted but not authenticated, so anyone able to intercept them can impersonate the server")
	}
	return c, nil
}

// Reload re-reads the trust and client certificate files; on error the
// previous material stays in use.
func (c *Client) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := digest(c.files()) // before reading, as in Server.Reload
	minV, maxV, err := versions(c.o.Protocols)
	if err != nil {
		return err
	}
	m := &clientMaterial{minV: minV, maxV: maxV}
	var files []string
	if c.o.TrustCertsBundle != "" {
		files = append(files, c.o.TrustCertsBundle)
	}
	files = append(files, c.o.TrustCerts...)
	if len(files) > 0 {
		m.roots = x509.NewCertPool()
		for _, f := range files {
			if err := appendPEM(m.roots, "trustCerts", f); err != nil {
				return err
			}
		}
	}
	if c.o.ClientCertPath != "" {
		cert, err := loadKeyPair(c.o.ClientCertPath, c.o.ClientKeyPath, c.o.ClientIntermediateCertsPath)
		if err != nil {
			return fmt.Errorf("clientAuth: %w", err)
		}
		m.cert = &cert
	}
	c.cur.Store(m)
	c.digest.Store(&d)
	return nil
}

// ServerName returns the commonName with vars substituted.
func (c *Client) ServerName(vars map[string]string) (string, error) {
	return Expand(c.o.CommonName, vars)
}

// Config returns a client configuration for one destination: the
// commonName with vars substituted is the SNI and the verified name.
// Trust roots and the client certificate are resolved on every handshake,
// so the config stays valid across reloads. Calls that yield the same
// name return the same *tls.Config (transports pool connections by it);
// it is shared and must not be modified.
func (c *Client) Config(vars map[string]string) (*tls.Config, error) {
	name, err := c.ServerName(vars)
	if err != nil {
		return nil, fmt.Errorf("tls: commonName: %w", err)
	}
	if v, ok := c.configs.Load(name); ok {
		return v.(*tls.Config), nil
	}
	v, _ := c.configs.LoadOrStore(name, c.newConfig(name))
	return v.(*tls.Config), nil
}

func (c *Client) newConfig(name string) *tls.Config {
	m := c.cur.Load()
	cfg := &tls.Config{
		ServerName: name,
		MinVersion: m.minV,
		MaxVersion: m.maxV,
		NextProtos: c.o.NextProtos,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := c.cur.Load().cert; cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil // no certificate to offer
		},
	}
	if c.o.DisableValidation {
		cfg.InsecureSkipVerify = true
		return cfg
	}
	// crypto/tls can only verify against a pool fixed in the config. To
	// follow reloads, verification is done here, exactly as crypto/tls
	// does it (chain to the current roots, name = commonName), and the
	// built-in check is turned off in favour of it.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyServer(cs, c.cur.Load().roots, name)
	}
	return cfg
}

// verifyServer checks the server's chain against roots (nil: system
// roots) and its name against name.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, name string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: server presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("tls: server certificate for %q rejected: %w", name, err)
	}
	return nil
}

var errUnknownVar = errors.New("unknown variable")

// Expand replaces each {name} in s by vars[name]. A placeholder without a
// value, or an unbalanced brace, is an error naming it.
func Expand(s string, vars map[string]string) (string, error) {
	if !strings.ContainsAny(s, "{}") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexAny(s, "{}")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if s[i] == '}' {
			return "", fmt.Errorf("unbalanced '}' in %q", s)
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unbalanced '{' in %q", s)
		}
		name := s[i+1 : i+j]
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("{%s}: %w (no prefix captured it)", name, errUnknownVar)
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// versions maps Linkerd's protocol names to a version range.
func versions(ps []string) (minV, maxV uint16, err error) {
	if len(ps) == 0 {
		return tls.VersionTLS12, 0, nil
	}
	for i, p := range ps {
		v, ok := protocolVersions[p]
		if !ok {
			return 0, 0, fmt.Errorf("tls: protocols[%d]: unknown TLS protocol %q (known: TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)", i, p)
		}
		if minV == 0 || v < minV {
			minV = v
		}
		if v > maxV {
			maxV = v
		}
	}
	return minV, maxV, nil
}

var protocolVersions = map[string]uint16{
	"TLSv1":   tls.VersionTLS10,
	"TLSv1.1": tls.VersionTLS11,
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

// loadKeyPair reads a certificate chain and its key; intermediates, if
// given, are appended to the chain.
func loadKeyPair(certPath, keyPath, interPath string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: certPath: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: keyPath: %w", err)
	}
	if interPath != "" {
		inter, err := os.ReadFile(interPath)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("tls: intermediateCertsPath: %w", err)
		}
		certPEM = append(append(certPEM, '\n'), inter...)
	}
	// X509KeyPair accepts PKCS#8, PKCS#1 and SEC1 keys.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: certificate %s with key %s: %w", certPath, keyPath, err)
	}
	return cert, nil
}

func loadPool(key, path string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if err := appendPEM(pool, key, path); err != nil {
		return nil, err
	}
	return pool, nil
}

// appendPEM adds every certificate of a PEM file to pool; a file without
// any certificate is an error.
func appendPEM(pool *x509.CertPool, key, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tls: %s: %w", key, err)
	}
	n := 0
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("tls: %s: %s: certificate %d: %w", key, path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return fmt.Errorf("tls: %s: %s holds no PEM certificate", key, path)
	}
	return nil
}
