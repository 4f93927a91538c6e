package marathon

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// ServiceAccount is a DC/OS service account credential (the JSON of
// EnvDCOSCredential). The namer logs in by POSTing
// {"uid": UID, "token": <JWT {"uid": UID} signed RS256 with the key>} to
// LoginEndpoint, and sends the token it gets back as
// "Authorization: token=<token>".
type ServiceAccount struct {
	// LoginEndpoint is the IAM login URL, e.g.
	// https://leader.mesos/acs/api/v1/auth/login; a bare path is asked of
	// Marathon's own host (as Linkerd does).
	LoginEndpoint string
	UID           string
	Key           *rsa.PrivateKey
}

// ParseServiceAccount decodes and checks a DC/OS service account
// credential; every field is required and the scheme must be RS256.
func ParseServiceAccount(js []byte) (*ServiceAccount, error) {
	var raw struct {
		LoginEndpoint string `json:"login_endpoint"`
		PrivateKey    string `json:"private_key"`
		Scheme        string `json:"scheme"`
		UID           string `json:"uid"`
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("not a service account credential (JSON with login_endpoint, private_key, scheme, uid): %v", err)
	}
	switch {
	case raw.LoginEndpoint == "":
		return nil, errors.New("login_endpoint is missing")
	case raw.UID == "":
		return nil, errors.New("uid is missing")
	case raw.PrivateKey == "":
		return nil, errors.New("private_key is missing")
	case raw.Scheme != "RS256":
		return nil, fmt.Errorf("scheme %q is not supported (only RS256)", raw.Scheme)
	}
	if u, err := url.Parse(raw.LoginEndpoint); err != nil || (u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") || (u.Scheme == "" && !strings.HasPrefix(raw.LoginEndpoint, "/")) {
		return nil, fmt.Errorf("login_endpoint %q is not an http(s) URL or an absolute path", raw.LoginEndpoint)
	}
	key, err := parseRSAKey(raw.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("private_key: %w", err)
	}
	return &ServiceAccount{LoginEndpoint: raw.LoginEndpoint, UID: raw.UID, Key: key}, nil
}

// parseRSAKey reads a PEM RSA private key, PKCS#1 or PKCS#8.
func parseRSAKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key (PKCS#1 or PKCS#8): %v", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %T key, not RSA (the scheme is RS256)", k)
	}
	return rk, nil
}

// loginJWTLifetime bounds the login JWT: it is used once, at once.
const loginJWTLifetime = 5 * time.Minute

// SignLoginJWT returns the RS256 JWT a service account logs in with:
// claims {"uid": uid, "exp": now+5m}.
func SignLoginJWT(key *rsa.PrivateKey, uid string, now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	claims, err := json.Marshal(struct {
		UID string `json:"uid"`
		Exp int64  `json:"exp"`
	}{uid, now.Add(loginJWTLifetime).Unix()})
	if err != nil {
		return "", err
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + enc.EncodeToString(sig), nil
}

// tokenSource logs in with a service account and caches the token until
// Marathon refuses it.
type tokenSource struct {
	acct    *ServiceAccount
	url     string // the login URL
	host    string // the Host header when the login goes to Marathon's host
	client  *http.Client
	timeout time.Duration

	mu    sync.Mutex // serialises logins
	token string
}

// get returns the cached token, logging in when there is none or when
// stale is the token that was just refused.
func (t *tokenSource) get(ctx context.Context, stale string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && t.token != stale {
		return t.token, nil
	}
	tok, err := t.login(ctx)
	if err != nil {
		t.token = ""
		return "", err
	}
	t.token = tok
	return tok, nil
}

func (t *tokenSource) login(ctx context.Context) (string, error) {
	jwt, err := SignLoginJWT(t.acct.Key, t.acct.UID, time.Now())
	if err != nil {
		return "", fmt.Errorf("DC/OS login: signing: %w", err)
	}
	body, _ := json.Marshal(map[string]string{"uid": t.acct.UID, "token": jwt})
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("DC/OS login: %w", err)
	}
	if t.host != "" {
		req.Host = t.host
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("DC/OS login at %s: %w", t.url, err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(rsp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("DC/OS login at %s: reading the answer: %w", t.url, err)
	}
	if rsp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("DC/OS login at %s as %q: %s: %s", t.url, t.acct.UID, rsp.Status, snippet(b))
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil {
		return "", fmt.Errorf("DC/OS login at %s: answer is not JSON: %v", t.url, err)
	}
	if tok.Token == "" {
		return "", fmt.Errorf("DC/OS login at %s: answer has no token", t.url)
	}
	return tok.Token, nil
}

// snippet is the start of a response body, for error messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
