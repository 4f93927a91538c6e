package marathon

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

type namersDoc struct {
	Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
}

func load(text string) (*Config, error) {
	var doc namersDoc
	if err := config.Load([]byte(text), &doc); err != nil {
		return nil, err
	}
	return doc.Namers[0].Value.(*Config), nil
}

func namingEnv(t *testing.T) naming.Env {
	return naming.Env{Ctx: t.Context(), Scope: telemetry.NewRegistry().Scope().Scope("namer", "marathon")}
}

func TestConfigDefaults(t *testing.T) {
	c, err := load("namers:\n- kind: io.l5d.marathon\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "marathon.mesos" || c.Port != 80 || c.URIPrefix != "" || c.TTLMs != 5000 || c.UseHealthCheck || c.TLS != nil {
		t.Errorf("defaults: %+v", c)
	}
	o, err := c.options(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if o.BaseURL != "http://marathon.mesos:80" || o.Host != "marathon.mesos" || o.TTL != 5*time.Second ||
		o.Prefix.String() != "/#/io.l5d.marathon" || o.ServiceAccount != nil || o.BasicCredential != "" {
		t.Errorf("options: %+v", o)
	}
	// Building asks nothing of Marathon (nothing is watched yet).
	nm, err := c.NewNamer(namingEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	nm.(*Namer).Close()
}

func TestConfigAllKeys(t *testing.T) {
	c, err := load(`namers:
- kind: io.l5d.marathon
  prefix: /dcos
  host: master.mesos
  port: 443
  uriPrefix: /marathon/
  ttlMs: 1500
  useHealthCheck: true
  tls:
    commonName: master.mesos
    disableValidation: true
`)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options(env(map[string]string{EnvBasicCredential: " dXNlcjpwdw== "}))
	if err != nil {
		t.Fatal(err)
	}
	if o.BaseURL != "https://master.mesos:443/marathon" || o.Host != "master.mesos" || o.TTL != 1500*time.Millisecond ||
		!o.UseHealthCheck || o.Prefix.String() != "/#/dcos" || o.TLS == nil || o.BasicCredential != "dXNlcjpwdw==" {
		t.Errorf("options: %+v", o)
	}
}

// An IPv6 host is bracketed in the URL and the Host header.
func TestConfigIPv6Host(t *testing.T) {
	for _, h := range []string{"'::1'", "'[::1]'"} {
		c, err := load("namers:\n- kind: io.l5d.marathon\n  host: " + h + "\n  port: 8080\n")
		if err != nil {
			t.Fatal(err)
		}
		o, err := c.options(env(nil))
		if err != nil || o.BaseURL != "http://[::1]:8080" || o.Host != "[::1]" {
			t.Errorf("host %s: %s, Host %s, %v", h, o.BaseURL, o.Host, err)
		}
	}
}

// Bad values fail with the field's name.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ extra, want string }{
		{"  host: ''\n", "namers[0].host: must not be empty"},
		{"  host: 'a/b'\n", `namers[0].host: "a/b" is not a host name or IP address`},
		{"  port: 0\n", "namers[0].port: 0 is not a TCP port from 1 to 65535"},
		{"  port: 70000\n", "namers[0].port: 70000 is not a TCP port"},
		{"  ttlMs: 0\n", "namers[0].ttlMs: 0 is not a number of milliseconds"},
		{"  ttlMs: -5\n", "namers[0].ttlMs: -5 is not a number of milliseconds"},
		{"  uriPrefix: '/a?b'\n", `namers[0].uriPrefix: "a?b" is not a URI path`},
		{"  uriPrefix: '/a//b'\n", `namers[0].uriPrefix: "a//b" is not a URI path`},
		{"  port: http\n", "namers[0].port"},
		{"  useHealthCheck: maybe\n", "namers[0].useHealthCheck"},
		{"  tls: {}\n", "namers[0].tls.commonName: TLS needs `commonName`"},
		{"  dst: /$/inet/x/1\n", "namers[0].dst"},
	} {
		_, err := load("namers:\n- kind: io.l5d.marathon\n" + c.extra)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.extra, err, c.want)
		}
	}
}

// A malformed DC/OS credential fails the namer's construction, naming
// the variable.
func TestConfigBadCredential(t *testing.T) {
	c, err := load("namers:\n- kind: io.l5d.marathon\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.options(env(map[string]string{EnvDCOSCredential: `{"login_endpoint": "https://leader.mesos/acs/api/v1/auth/login", "scheme": "RS256", "uid": "sa"}`}))
	if err == nil || err.Error() != "DCOS_SERVICE_ACCOUNT_CREDENTIAL: private_key is missing" {
		t.Errorf("error %v", err)
	}
	t.Setenv(EnvDCOSCredential, "{")
	if _, err := c.NewNamer(namingEnv(t)); err == nil || !strings.Contains(err.Error(), "io.l5d.marathon: DCOS_SERVICE_ACCOUNT_CREDENTIAL: not a service account credential") {
		t.Errorf("NewNamer with a bad credential: %v", err)
	}
}

// uriPrefix: the API is asked under it.
func TestURIPrefix(t *testing.T) {
	m := startMarathon(t, "/marathon", nil)
	n := namerFromConfig(t, marathonYAML(m, "  uriPrefix: marathon\n"), nil)
	w := watchLookup(t, n, "/shop/users/x")
	w.await(t, "/#/io.l5d.marathon/shop/users /x [127.0.0.21:31101 127.0.0.22:31103 127.0.0.23:31105]")
	var list, app bool
	for _, r := range m.requestLog() {
		list = list || r.uri == "/marathon/v2/apps"
		app = app || r.uri == "/marathon/v2/apps/shop/users?embed=app.tasks"
		if !strings.HasPrefix(r.uri, "/marathon/v2/apps") {
			t.Errorf("request %s outside the prefix", r.uri)
		}
	}
	if !list || !app {
		t.Errorf("requests %v: want the app list and the app under /marathon", m.requestLog())
	}
	// Without the prefix, Marathon (here) answers 404 to the app list.
	bare := namerFromConfig(t, marathonYAML(m, ""), nil)
	if got := watchLookup(t, bare, "/webapp").awaitPrefix(t, "fail: "); !strings.Contains(got, "/v2/apps: not found") {
		t.Errorf("failure %q", got)
	}
}

// tls: HTTPS to Marathon, checked against trustCerts and commonName.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "dcos-test")
	pair := ca.Issue("marathon", "master.mesos.test", "127.0.0.1")
	cert, err := tls.LoadX509KeyPair(pair.CertPath, pair.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	m := startMarathon(t, "", &tls.Config{Certificates: []tls.Certificate{cert}})
	tlsYAML := func(cn string) string {
		return marathonYAML(m, fmt.Sprintf("  tls:\n    commonName: %s\n    trustCerts: [%q]\n", cn, ca.CertPath))
	}
	n := namerFromConfig(t, tlsYAML("master.mesos.test"), nil)
	if !strings.HasPrefix(n.o.BaseURL, "https://") {
		t.Fatalf("base URL %s", n.o.BaseURL)
	}
	w := watchLookup(t, n, "/webapp")
	w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]")

	bad := namerFromConfig(t, tlsYAML("someone-else.test"), nil)
	if got := watchLookup(t, bad, "/webapp").awaitPrefix(t, "fail: "); !strings.Contains(got, "certificate") {
		t.Errorf("wrong commonName: %q does not say why", got)
	}
	plain := namerFromConfig(t, marathonYAML(m, ""), nil) // http to an https server
	if got := watchLookup(t, plain, "/webapp").awaitPrefix(t, "fail: "); !strings.Contains(got, "400") {
		t.Errorf("plain HTTP to TLS: %q", got)
	}
}
