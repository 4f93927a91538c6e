package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// handshake runs one TLS handshake over loopback between srv and cli and
// returns the client's error (nil on success) and the negotiated ALPN.
func handshake(t *testing.T, srv, cli *tls.Config) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv)
		err = tc.Handshake()
		if err == nil {
			// Let the client finish reading the server's flight.
			_, _ = tc.Write([]byte("x"))
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli)
	if err != nil {
		<-done
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		<-done
		return "", err
	}
	proto := c.ConnectionState().NegotiatedProtocol
	return proto, <-done
}

func TestServerClientHandshake(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	for _, tc := range []struct {
		name string
		pair tlstest.Pair
	}{
		{"pkcs8", ca.Issue("s8", "hello.linkerd.io")},
		{"sec1", ca.IssueSEC1("s1", "hello.linkerd.io")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewServer(ServerOptions{CertPath: tc.pair.CertPath, KeyPath: tc.pair.KeyPath, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewClient(ClientOptions{CommonName: "{service}.linkerd.io", TrustCerts: []string{ca.CertPath}, NextProtos: []string{"h2"}})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := c.Config(map[string]string{"service": "hello"})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ServerName != "hello.linkerd.io" {
				t.Errorf("ServerName = %q, want hello.linkerd.io", cfg.ServerName)
			}
			proto, err := handshake(t, s.Config(), cfg)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if proto != "h2" {
				t.Errorf("ALPN = %q, want h2", proto)
			}
		})
	}
}

func TestClientRejectsWrongNameAndUnknownCA(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	other := tlstest.NewCA(t, "other")
	pair := ca.Issue("srv", "hello.linkerd.io")
	s, err := NewServer(ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cn, trust, want string
	}{
		{"wrong name", "world.linkerd.io", ca.CertPath, "world.linkerd.io"},
		{"unknown CA", "hello.linkerd.io", other.CertPath, "unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewClient(ClientOptions{CommonName: tc.cn, TrustCertsBundle: tc.trust})
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := c.Config(nil)
			_, err = handshake(t, s.Config(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("handshake error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDisableValidationWarnsAndConnects(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	pair := ca.Issue("srv", "hello.linkerd.io")
	s, err := NewServer(ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c, err := NewClient(ClientOptions{DisableValidation: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "validation is DISABLED") {
		t.Errorf("no loud warning logged; got %q", logs.String())
	}
	cfg, _ := c.Config(nil)
	if _, err := handshake(t, s.Config(), cfg); err != nil {
		t.Fatalf("handshake with validation disabled: %v", err)
	}
}

func TestRequireClientAuth(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	srvPair := ca.Issue("srv", "hello.linkerd.io")
	cliPair := ca.Issue("cli", "linkerd-client")
	s, err := NewServer(ServerOptions{CertPath: srvPair.CertPath, KeyPath: srvPair.KeyPath, CACertPath: ca.CertPath, RequireClientAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := NewClient(ClientOptions{CommonName: "hello.linkerd.io", TrustCerts: []string{ca.CertPath}})
	cfg, _ := anon.Config(nil)
	if _, err := handshake(t, s.Config(), cfg); err == nil {
		t.Fatal("a client without a certificate was accepted by requireClientAuth")
	}
	authed, err := NewClient(ClientOptions{CommonName: "hello.linkerd.io", TrustCerts: []string{ca.CertPath},
		ClientCertPath: cliPair.CertPath, ClientKeyPath: cliPair.KeyPath})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ = authed.Config(nil)
	if _, err := handshake(t, s.Config(), cfg); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
}

// TestReload swaps the server to a certificate of a new CA: a client
// config built before the reload trusts the new CA once reloaded itself,
// and a broken file keeps the old material.
func TestReload(t *testing.T) {
	ca1 := tlstest.NewCA(t, "one")
	ca2 := tlstest.NewCA(t, "two")
	p1 := ca1.Issue("srv1", "hello.linkerd.io")
	p2 := ca2.Issue("srv2", "hello.linkerd.io")
	dir := t.TempDir()
	certPath, keyPath, trust := dir+"/cert.pem", dir+"/key.pem", dir+"/trust.pem"
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(p1.CertPath, certPath)
	cp(p1.KeyPath, keyPath)
	cp(ca1.CertPath, trust)
	s, err := NewServer(ServerOptions{CertPath: certPath, KeyPath: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ClientOptions{CommonName: "hello.linkerd.io", TrustCertsBundle: trust})
	if err != nil {
		t.Fatal(err)
	}
	srvCfg := s.Config()
	cliCfg, _ := c.Config(nil)
	if _, err := handshake(t, srvCfg, cliCfg); err != nil {
		t.Fatalf("before reload: %v", err)
	}

	cp(p2.CertPath, certPath)
	cp(p2.KeyPath, keyPath)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, srvCfg, cliCfg); err == nil {
		t.Fatal("client still trusting only CA one accepted CA two's certificate")
	}
	cp(ca2.CertPath, trust)
	if err := c.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, srvCfg, cliCfg); err != nil {
		t.Fatalf("after both reloads (configs built before): %v", err)
	}

	if err := os.WriteFile(keyPath, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), keyPath) {
		t.Fatalf("reload of a broken key: err = %v, want one naming %s", err, keyPath)
	}
	if _, err := handshake(t, srvCfg, cliCfg); err != nil {
		t.Fatalf("a failed reload dropped the working material: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	pair := ca.Issue("srv", "a")
	for _, tc := range []struct {
		name string
		fn   func() error
		want string
	}{
		{"no cert", func() error { _, err := NewServer(ServerOptions{KeyPath: pair.KeyPath}); return err }, "certPath is required"},
		{"missing file", func() error {
			_, err := NewServer(ServerOptions{CertPath: "/nonexistent/c.pem", KeyPath: pair.KeyPath})
			return err
		}, "/nonexistent/c.pem"},
		{"client auth without CA", func() error {
			_, err := NewServer(ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath, RequireClientAuth: true})
			return err
		}, "caCertPath"},
		{"bad protocol", func() error {
			_, err := NewServer(ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath, Protocols: []string{"SSLv3"}})
			return err
		}, `protocols[0]: unknown TLS protocol "SSLv3"`},
		{"no commonName", func() error { _, err := NewClient(ClientOptions{}); return err }, "commonName is required"},
		{"trust file without certs", func() error {
			_, err := NewClient(ClientOptions{CommonName: "a", TrustCerts: []string{pair.KeyPath}})
			return err
		}, "holds no PEM certificate"},
		{"auth and disableValidation", func() error {
			_, err := NewClient(ClientOptions{DisableValidation: true, ClientCertPath: pair.CertPath, ClientKeyPath: pair.KeyPath})
			return err
		}, "cannot be combined"},
		{"unbalanced brace", func() error { _, err := NewClient(ClientOptions{CommonName: "{service.linkerd.io"}); return err }, "unbalanced '{'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.fn()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	minV, maxV, err := versions([]string{"TLSv1.3", "TLSv1.2"})
	if err != nil || minV != tls.VersionTLS12 || maxV != tls.VersionTLS13 {
		t.Fatalf("versions = %x %x %v, want TLS1.2..1.3", minV, maxV, err)
	}
	minV, maxV, _ = versions(nil)
	if minV != tls.VersionTLS12 || maxV != 0 {
		t.Fatalf("default versions = %x %x, want TLS1.2..max", minV, maxV)
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"service": "hello", "ns": "prod"}
	for _, tc := range []struct{ in, want, err string }{
		{"plain.example", "plain.example", ""},
		{"{service}.linkerd.io", "hello.linkerd.io", ""},
		{"{service}.{ns}.svc", "hello.prod.svc", ""},
		{"{nope}.x", "", "{nope}"},
		{"a}b", "", "unbalanced '}'"},
	} {
		got, err := Expand(tc.in, vars)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Expand(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWatchReloadsChangedFiles(t *testing.T) {
	ca1 := tlstest.NewCA(t, "one")
	ca2 := tlstest.NewCA(t, "two")
	p1 := ca1.Issue("srv1", "hello.linkerd.io")
	p2 := ca2.Issue("srv2", "hello.linkerd.io")
	dir := t.TempDir()
	certPath, keyPath := dir+"/cert.pem", dir+"/key.pem"
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(p1.CertPath, certPath)
	cp(p1.KeyPath, keyPath)
	s, err := NewServer(ServerOptions{CertPath: certPath, KeyPath: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	// A poll may fall between the two writes below and fail (key and
	// certificate do not match yet); the next change must then succeed.
	go func() { Watch(ctx, s, 10*time.Millisecond, nil); close(done) }()
	defer func() { cancel(); <-done }()

	c2, _ := NewClient(ClientOptions{CommonName: "hello.linkerd.io", TrustCerts: []string{ca2.CertPath}})
	cfg2, _ := c2.Config(nil)
	cp(p2.CertPath, certPath)
	cp(p2.KeyPath, keyPath)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := handshake(t, s.Config(), cfg2); err == nil {
			return // the new certificate is served
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not picked up within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClientConfigSharedPerName(t *testing.T) {
	c, err := NewClient(ClientOptions{CommonName: "{service}.linkerd.io"})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := c.Config(map[string]string{"service": "a"})
	a2, _ := c.Config(map[string]string{"service": "a", "other": "x"})
	b, _ := c.Config(map[string]string{"service": "b"})
	if a1 != a2 {
		t.Error("two configs for a.linkerd.io: connections could not be shared")
	}
	if a1 == b || b.ServerName != "b.linkerd.io" {
		t.Errorf("b's config = %p %q, want its own for b.linkerd.io", b, b.ServerName)
	}
	if _, err := c.Config(nil); err == nil || !strings.Contains(err.Error(), "{service}") {
		t.Errorf("Config without the variable: %v, want an error naming {service}", err)
	}
}

func TestWatchReportsABrokenRotationOnce(t *testing.T) {
	ca := tlstest.NewCA(t, "one")
	p := ca.Issue("srv", "hello.linkerd.io")
	dir := t.TempDir()
	certPath, keyPath := dir+"/cert.pem", dir+"/key.pem"
	good, _ := os.ReadFile(p.KeyPath)
	cert, _ := os.ReadFile(p.CertPath)
	if err := os.WriteFile(certPath, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(ServerOptions{CertPath: certPath, KeyPath: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Watch(ctx, s, 5*time.Millisecond, func(err error) { errs <- err }); close(done) }()
	defer func() { cancel(); <-done }()

	if err := os.WriteFile(keyPath, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(err.Error(), keyPath) {
			t.Errorf("reload error %v does not name %s", err, keyPath)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a broken key was not reported")
	}
	time.Sleep(50 * time.Millisecond) // ten more polls of the same content
	if n := len(errs); n != 0 {
		t.Errorf("the same broken content was reported %d more times", n)
	}
	c, _ := NewClient(ClientOptions{CommonName: "hello.linkerd.io", TrustCerts: []string{ca.CertPath}})
	cfg, _ := c.Config(nil)
	if _, err := handshake(t, s.Config(), cfg); err != nil {
		t.Fatalf("the broken rotation replaced the working material: %v", err)
	}
}
