package h2

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/linnet-mesh/linnet/internal/tlsconf"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// echoBackend answers with what it received: the request headers (as
// X-Got-<Name>), the body, and trailers both announced (X-Announced) and
// unannounced (X-Late).
func echoBackend(t testing.TB) string {
	return startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range r.Header {
			w.Header()["X-Got-"+k] = vs
		}
		w.Header().Set("X-Got-Host", r.Host)
		w.Header().Set("X-Got-Proto", r.Proto)
		w.Header().Set("Trailer", "X-Announced")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusAccepted)
		n, _ := io.Copy(w, r.Body)
		w.Header().Set("X-Announced", fmt.Sprint(n))
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	}))
}

func TestH2ForwardsBodyHeadersAndTrailers(t *testing.T) {
	p := newTestProxy(t, map[string]string{"echo": echoBackend(t)}, proxyOpts{ident: staticName("echo")})
	body := strings.Repeat("0123456789", 100_000)
	req, _ := http.NewRequest("POST", "http://"+p.Addr+"/some/path?q=1", strings.NewReader(body))
	req.Header.Set("Te", "trailers")
	req.Header.Set("X-App", "kept")
	req.Header["User-Agent"] = []string{""} // the caller sends none
	req.Header.Set("L5d-Dtab", "/svc/x => /#/test/echo")
	resp, err := h2cClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("proxy answered with %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusAccepted || string(got) != body {
		t.Fatalf("status %d, body %d bytes; want 202 and the %d bytes sent", resp.StatusCode, len(got), len(body))
	}
	for k, want := range map[string]string{
		"X-Got-Te":              "trailers",
		"X-Got-X-App":           "kept",
		"X-Got-Proto":           "HTTP/2.0",
		"X-Got-Host":            p.Addr,
		"X-Got-L5d-Dst-Service": "/svc/echo",
		"X-Got-L5d-Ctx-Dtab":    "/svc/x=>/#/test/echo",
		"X-Got-Via":             "1.1 linkerd",
	} {
		if v := resp.Header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if v := resp.Header.Get("X-Got-L5d-Dtab"); v != "" {
		t.Errorf("l5d-dtab was forwarded as is (%q); it belongs in l5d-ctx-dtab", v)
	}
	if v := resp.Header.Get("X-Got-User-Agent"); v != "" {
		t.Errorf("the proxy added User-Agent %q", v)
	}
	if got, want := resp.Trailer.Get("X-Announced"), fmt.Sprint(len(body)); got != want {
		t.Errorf("announced trailer = %q, want %q", got, want)
	}
	if got := resp.Trailer.Get("X-Late"); got != "late" {
		t.Errorf("unannounced trailer = %q, want late", got)
	}
}

func TestH2DropsConnectionHeadersFromHTTP1Callers(t *testing.T) {
	p := newTestProxy(t, map[string]string{"echo": echoBackend(t)}, proxyOpts{ident: staticName("echo")})
	// An HTTP/1.1 caller may send hop-by-hop headers; none may reach an
	// HTTP/2 endpoint (x/net would refuse to send them).
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: echo\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers, deflate\r\nProxy-Connection: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202 from the endpoint", resp.StatusCode)
	}
	for _, k := range []string{"X-Got-Connection", "X-Got-X-Hop", "X-Got-Keep-Alive", "X-Got-Proxy-Connection"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("hop-by-hop header reached the endpoint: %s = %q", k, v)
		}
	}
	if v := resp.Header.Get("X-Got-Te"); v != "trailers" {
		t.Errorf("te = %q, want exactly \"trailers\"", v)
	}

	// A chunked HTTP/1.1 body is streamed to the endpoint as DATA frames.
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprint(c2, "POST / HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || string(body) != "hello world" || resp.Header.Get("X-Got-Transfer-Encoding") != "" {
		t.Fatalf("chunked request: %d %q (endpoint saw transfer-encoding %q)", resp.StatusCode, body, resp.Header.Get("X-Got-Transfer-Encoding"))
	}
}

func TestH2ErrorsAreLinkerdErrors(t *testing.T) {
	p := newTestProxy(t, map[string]string{"down": freeAddr(t)}, proxyOpts{})
	for _, tc := range []struct {
		path, msg string
		status    int
		retryable bool
	}{
		{"/nowhere", "Unable to route request!", http.StatusBadGateway, false},
		{"/down", "unable to connect", http.StatusBadGateway, true},
		{"/", "Unknown destination", http.StatusBadRequest, false},
	} {
		resp, err := h2cClient().Get("http://" + p.Addr + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		errHdr, _ := url.QueryUnescape(resp.Header.Get("L5d-Err"))
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.msg) || !strings.Contains(errHdr, tc.msg) {
			t.Errorf("%s: %d %q (l5d-err %q); want %d mentioning %q", tc.path, resp.StatusCode, body, errHdr, tc.status, tc.msg)
		}
		if got := resp.Header.Get("L5d-Retryable") == "true"; got != tc.retryable {
			t.Errorf("%s: l5d-retryable = %v, want %v", tc.path, got, tc.retryable)
		}
	}
}

// TestH2CUpgrade speaks the HTTP/1.1 Upgrade to h2c by hand: 101, then the
// response to the upgrade request arrives as HTTP/2 stream 1.
func TestH2CUpgrade(t *testing.T) {
	p := newTestProxy(t, map[string]string{"echo": echoBackend(t)}, proxyOpts{ident: staticName("echo")})
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /up HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, br)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, nil)
	var fields []hpack.HeaderField
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			fields, err = dec.DecodeFull(h.HeaderBlockFragment())
			if err != nil {
				t.Fatal(err)
			}
			break
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			_ = fr.WriteSettingsAck()
		}
	}
	got := map[string]string{}
	for _, f := range fields {
		got[f.Name] = f.Value
	}
	if got[":status"] != "202" || got["x-got-l5d-dst-service"] != "/svc/echo" {
		t.Fatalf("stream 1 response headers = %v, want :status 202 from the endpoint", got)
	}
	if _, ok := got["x-got-http2-settings"]; ok {
		t.Error("HTTP2-Settings was forwarded to the endpoint")
	}
}

// TestH2OverTLSWithALPN serves h2 over TLS (tlsconf) and checks that
// ALPN negotiated h2 and the request was proxied.
func TestH2OverTLSWithALPN(t *testing.T) {
	ca := tlstest.NewCA(t, "mesh")
	pair := ca.Issue("proxy", "proxy.linkerd.io")
	srvTLS, err := tlsconf.NewServer(tlsconf.ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath})
	if err != nil {
		t.Fatal(err)
	}
	p := newTestProxy(t, map[string]string{"echo": echoBackend(t)}, proxyOpts{ident: staticName("echo"), serverTLS: srvTLS.Config()})
	cli, err := tlsconf.NewClient(tlsconf.ClientOptions{CommonName: "proxy.linkerd.io", TrustCerts: []string{ca.CertPath}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := cli.Config(nil)
	var protos http.Protocols
	protos.SetHTTP2(true)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Protocols: &protos}, Timeout: 10 * time.Second}
	resp, err := hc.Post("https://"+p.Addr+"/", "text/plain", bytes.NewReader([]byte("over tls")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("proto %s, TLS %v; want h2 negotiated by ALPN", resp.Proto, resp.TLS != nil)
	}
	if resp.StatusCode != http.StatusAccepted || string(body) != "over tls" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestTransportErrorsAreTyped(t *testing.T) {
	// Refused connection: a dial error, the router's ConnectError.
	tr := NewTransport(TransportOptions{ConnectTimeout: time.Second})
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+freeAddr(t)+"/", nil)
	_, err := tr.RoundTrip(req)
	if !IsUnsent(err) {
		t.Errorf("refused connection: %v is not typed as unsent", err)
	}

	// TLS to an endpoint whose certificate is not trusted: also a dial
	// error, the request was never written.
	ca := tlstest.NewCA(t, "mesh")
	pair := ca.Issue("ep", "ep.linkerd.io")
	srvTLS, err := tlsconf.NewServer(tlsconf.ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvTLS.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	other := tlstest.NewCA(t, "other")
	cli, _ := tlsconf.NewClient(tlsconf.ClientOptions{CommonName: "ep.linkerd.io", TrustCerts: []string{other.CertPath}})
	cfg, _ := cli.Config(nil)
	tr = NewTransport(TransportOptions{TLS: cfg})
	defer tr.CloseIdleConnections()
	req, _ = http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	_, err = tr.RoundTrip(req)
	if !IsUnsent(err) || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("untrusted endpoint: %v, want an unsent TLS handshake error", err)
	}
	// A refused stream is retryable: a real HTTP/2 peer refuses it.
	refuser := startRefusingPeer(t)
	tr = NewTransport(TransportOptions{})
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe() // a body net/http cannot replay by itself
	defer pw.Close()
	req, _ = http.NewRequest("POST", "http://"+refuser+"/", pr)
	_, err = tr.RoundTrip(req)
	var ue *UnsentError
	if !errors.As(err, &ue) {
		t.Errorf("REFUSED_STREAM: %v (%T), want an *UnsentError", err, err)
	}
	if e := classifyTransportError(errors.New("stream error: stream ID 3; INTERNAL_ERROR; received from peer")); IsUnsent(e) || !strings.Contains(e.Error(), "INTERNAL_ERROR") {
		t.Errorf("INTERNAL_ERROR reset: %v, want a non-retryable StreamResetError", e)
	}
}

// startRefusingPeer is a minimal HTTP/2 server that answers every stream
// with RST_STREAM REFUSED_STREAM.
func startRefusingPeer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				if fr.WriteSettings() != nil {
					return
				}
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							_ = fr.WriteSettingsAck()
						}
					case *http2.HeadersFrame:
						_ = fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
