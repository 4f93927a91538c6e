package tlsconf

import (
	"fmt"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

func TestServerConfigDecodesAndBuilds(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	pair := ca.Issue("srv", "hello.linkerd.io")
	var c struct {
		TLS *ServerConfig `yaml:"tls"`
	}
	text := fmt.Sprintf("tls:\n  certPath: %s\n  keyPath: %s\n  protocols: [TLSv1.3]\n", pair.CertPath, pair.KeyPath)
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	if !c.TLS.On() {
		t.Fatal("a tls block without `enabled` must be on")
	}
	s, err := NewServer(c.TLS.Options("h2"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := NewClient(ClientOptions{CommonName: "hello.linkerd.io", TrustCerts: []string{ca.CertPath}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cli.Config(nil)
	if err != nil {
		t.Fatal(err)
	}
	if proto, err := handshake(t, s.Config(), cfg); err != nil || proto != "h2" {
		t.Fatalf("handshake: ALPN %q, %v; want h2", proto, err)
	}

	var off struct {
		TLS *ServerConfig `yaml:"tls"`
	}
	if err := config.Load([]byte("tls: {enabled: false, certPath: c, keyPath: k}\n"), &off); err != nil {
		t.Fatal(err)
	}
	if off.TLS.On() {
		t.Error("enabled: false must be off")
	}
	if (*ServerConfig)(nil).On() {
		t.Error("an absent block must be off")
	}
}

func TestServerConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"tls: {certPath: c, keyPath: k, protocols: [TLSv1.2, SSLv3]}\n", `tls.protocols[1]: unknown TLS protocol "SSLv3"`},
		{"tls: {certPath: c, keyPath: k, requireClientAuth: true}\n", "tls.caCertPath"},
		{"tls: {keyPath: k}\n", "certPath"},
		{"tls: {certPath: c, keyPath: k, ciphers: [x]}\n", config.UnsupportedSuffix},
	} {
		var c struct {
			TLS *ServerConfig `yaml:"tls"`
		}
		err := config.Load([]byte(tc.text), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want an error containing %q", tc.text, err, tc.want)
		}
	}
}

// The shared client block (namerd, etcd, Consul) decodes, validates and
// builds a configuration that completes a mutual-TLS handshake.
func TestClientConfigDecodesAndBuilds(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	srvPair := ca.Issue("srv", "namerd.local")
	cliPair := ca.Issue("cli", "router.local")
	s, err := NewServer(ServerOptions{CertPath: srvPair.CertPath, KeyPath: srvPair.KeyPath, CACertPath: ca.CertPath, RequireClientAuth: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		TLS *ClientConfig `yaml:"tls"`
	}
	text := fmt.Sprintf("tls:\n  commonName: namerd.local\n  trustCerts: [%s]\n  clientAuth: {certPath: %s, keyPath: %s}\n", ca.CertPath, cliPair.CertPath, cliPair.KeyPath)
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.TLS.TLSConfig("h2")
	if err != nil || cfg == nil {
		t.Fatalf("TLSConfig = %v, %v", cfg, err)
	}
	if proto, err := handshake(t, s.Config(), cfg); err != nil || proto != "h2" {
		t.Fatalf("handshake: ALPN %q, %v; want h2", proto, err)
	}
	for _, off := range []*ClientConfig{nil, {Enabled: false, CommonName: "x"}} {
		if cfg, err := off.TLSConfig(); cfg != nil || err != nil {
			t.Errorf("TLSConfig of %+v = %v, %v; want nil, nil", off, cfg, err)
		}
	}
}

func TestClientConfigErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"tls: {}\n", "tls.commonName: TLS needs `commonName`"},
		{"tls: {commonName: n, protocols: [TLSv1.3, SSLv3]}\n", `tls.protocols[1]: unknown TLS protocol "SSLv3"`},
		{"tls: {commonName: n, clientAuth: {keyPath: k}}\n", "certPath"},
		{"tls: {commonName: n, bogus: 1}\n", "bogus"},
	} {
		var c struct {
			TLS *ClientConfig `yaml:"tls"`
		}
		err := config.Load([]byte(tc.text), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
	var ok struct {
		TLS *ClientConfig `yaml:"tls"`
	}
	if err := config.Load([]byte("tls: {disableValidation: true}\n"), &ok); err != nil {
		t.Errorf("disableValidation without commonName: %v", err)
	}
}
