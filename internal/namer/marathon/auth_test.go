package marathon

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keysOnce sync.Once
	keyA     *rsa.PrivateKey // the service account's key
	keyB     *rsa.PrivateKey // someone else's
)

func testKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keyA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keyB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return keyA, keyB
}

// credential renders a DCOS_SERVICE_ACCOUNT_CREDENTIAL value; pkcs8
// chooses the key's PEM form.
func credential(t *testing.T, endpoint, uid string, key *rsa.PrivateKey, pkcs8 bool) string {
	t.Helper()
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	b, _ := json.Marshal(map[string]string{
		"login_endpoint": endpoint, "private_key": string(pem.EncodeToMemory(block)), "scheme": "RS256", "uid": uid,
	})
	return string(b)
}

// env returns a getenv over vars.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// namerFromConfig builds the namer from a YAML block and credentials, as
// NewNamer does (but for where the environment comes from).
func namerFromConfig(t *testing.T, yaml string, vars map[string]string) *Namer {
	t.Helper()
	c, err := load(yaml)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.options(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	o.Resolver, o.Timeout = testAgents, 2*time.Second
	n, err := New(namingEnv(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func marathonYAML(m *fakeMarathon, extra string) string {
	return "namers:\n- kind: io.l5d.marathon\n  host: 127.0.0.1\n  port: " + m.port() + "\n  ttlMs: 50\n" + extra
}

// MARATHON_HTTP_AUTH_CREDENTIAL is sent as is after "Basic ".
func TestBasicAuth(t *testing.T) {
	m := startMarathon(t, "", nil)
	m.basic = "dXNlcm5hbWU6cGFzc3dvcmQ=" // username:password

	n := namerFromConfig(t, marathonYAML(m, ""), map[string]string{EnvBasicCredential: "dXNlcm5hbWU6cGFzc3dvcmQ="})
	w := watchLookup(t, n, "/webapp")
	w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]")
	for _, r := range m.requestLog() {
		if r.auth != "Basic dXNlcm5hbWU6cGFzc3dvcmQ=" {
			t.Errorf("%s %s: Authorization %q", r.method, r.uri, r.auth)
		}
		if r.host != "127.0.0.1" {
			t.Errorf("%s %s: Host %q, want the configured host", r.method, r.uri, r.host)
		}
	}

	// Without the credential, Marathon's 401 is the visible failure.
	bare := namerFromConfig(t, marathonYAML(m, ""), nil)
	got := watchLookup(t, bare, "/webapp").awaitPrefix(t, "fail: ")
	if !strings.Contains(got, "401 Unauthorized") || !strings.Contains(got, "Invalid username or password") {
		t.Errorf("failure %q does not say Marathon refused the credentials", got)
	}
}

// A DC/OS service account logs in with an RS256 JWT the login endpoint
// verifies with the account's public key, sends "token=<token>", and
// logs in again when the token is refused.
func TestDCOSServiceAccount(t *testing.T) {
	key, other := testKeys(t)
	m := startMarathon(t, "", nil)
	m.dcosKey, m.dcosUID = &key.PublicKey, "linkerd-sa"

	for _, c := range []struct {
		name     string
		endpoint string
		pkcs8    bool
	}{
		{"absolute login URL, PKCS#1 key", m.srv.URL + loginPath, false},
		{"login path on Marathon's host, PKCS#8 key", loginPath, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m.mu.Lock()
			m.token, m.logins, m.requests = "", 0, nil
			m.mu.Unlock()
			n := namerFromConfig(t, marathonYAML(m, ""), map[string]string{
				EnvDCOSCredential:  credential(t, c.endpoint, "linkerd-sa", key, c.pkcs8),
				EnvBasicCredential: "ignored-when-an-account-is-set",
			})
			w := watchLookup(t, n, "/webapp")
			w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]")
			if got := m.loginCount(); got != 1 {
				t.Fatalf("%d logins, want 1", got)
			}
			for _, r := range m.requestLog() {
				if r.uri != loginPath && r.auth != "token=dcos-token-1" {
					t.Errorf("%s %s: Authorization %q, want the token", r.method, r.uri, r.auth)
				}
			}

			// The token expires: Marathon answers 401, the namer logs in
			// again and the answer never drops meanwhile.
			m.expireToken()
			m.addTask("/webapp", "webapp.after-refresh-"+c.endpoint, "127.0.0.16", 31020)
			w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002 127.0.0.16:31020]")
			if got := m.loginCount(); got != 2 {
				t.Errorf("%d logins after the token expired, want 2", got)
			}
			w.mu.Lock()
			failed := w.failed
			w.mu.Unlock()
			if failed {
				t.Error("the lookup failed while the token was renewed")
			}
			m.removeTask("/webapp", "webapp.after-refresh-"+c.endpoint)
			w.await(t, "/#/io.l5d.marathon/webapp / [127.0.0.11:31001 127.0.0.12:31002]")
		})
	}

	// A JWT signed with another key is refused by the login endpoint.
	m.mu.Lock()
	m.token, m.logins = "", 0
	m.mu.Unlock()
	n := namerFromConfig(t, marathonYAML(m, ""), map[string]string{EnvDCOSCredential: credential(t, m.srv.URL+loginPath, "linkerd-sa", other, false)})
	got := watchLookup(t, n, "/webapp").awaitPrefix(t, "fail: ")
	if !strings.Contains(got, "DC/OS login") || !strings.Contains(got, "401") || !strings.Contains(got, "linkerd-sa") {
		t.Errorf("failure %q does not say the login was refused", got)
	}
}

// The login JWT verifies with the public key and carries uid and exp.
func TestSignLoginJWT(t *testing.T) {
	key, other := testKeys(t)
	jwt, err := SignLoginJWT(key, "svc", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyJWT(&key.PublicKey, jwt, "svc"); err != nil {
		t.Errorf("own key: %v", err)
	}
	if err := verifyJWT(&other.PublicKey, jwt, "svc"); err == nil {
		t.Error("another key verifies the JWT")
	}
	if err := verifyJWT(&key.PublicKey, jwt, "someone"); err == nil {
		t.Error("the JWT verifies for another uid")
	}
	old, _ := SignLoginJWT(key, "svc", time.Now().Add(-time.Hour))
	if err := verifyJWT(&key.PublicKey, old, "svc"); err == nil {
		t.Error("an hour-old login JWT has not expired")
	}
}

func TestParseServiceAccountErrors(t *testing.T) {
	key, _ := testKeys(t)
	good := map[string]string{}
	_ = json.Unmarshal([]byte(credential(t, "https://leader.mesos/acs/api/v1/auth/login", "sa", key, false)), &good)
	with := func(k, v string) string {
		c := map[string]string{}
		for a, b := range good {
			c[a] = b
		}
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
		b, _ := json.Marshal(c)
		return string(b)
	}
	if _, err := ParseServiceAccount([]byte(with("x", ""))); err != nil {
		t.Fatalf("good credential: %v", err)
	}
	for _, c := range []struct{ js, want string }{
		{"not json", "not a service account credential"},
		{with("login_endpoint", ""), "login_endpoint is missing"},
		{with("login_endpoint", "ftp://x/login"), `login_endpoint "ftp://x/login"`},
		{with("login_endpoint", "relative/login"), `login_endpoint "relative/login"`},
		{with("uid", ""), "uid is missing"},
		{with("private_key", ""), "private_key is missing"},
		{with("private_key", "garbage"), "private_key: no PEM block"},
		{with("private_key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), "private_key: not an RSA private key"},
		{with("scheme", "HS256"), `scheme "HS256" is not supported (only RS256)`},
		{with("scheme", ""), `scheme "" is not supported`},
	} {
		_, err := ParseServiceAccount([]byte(c.js))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s…: error %v, want %q", c.js, err, c.want)
		}
	}
}
