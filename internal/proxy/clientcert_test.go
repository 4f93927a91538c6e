package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"maps"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// selfSigned returns the DER of a certificate with subject and, when san
// is set, a subjectAltName extension holding exactly those raw
// GeneralNames in that order.
func selfSigned(t testing.TB, subject pkix.Name, san []asn1.RawValue) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if san != nil {
		v, err := asn1.Marshal(san)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSubjectAltName, Value: v}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func generalName(tag int, v string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, Bytes: []byte(v)}
}

func upperHash(der []byte) string {
	s := sha256.Sum256(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

func TestClientCertValueGolden(t *testing.T) {
	ip := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 7, Bytes: net.IPv4(192, 0, 2, 1).To4()}
	email := generalName(1, "ops@example.com")
	der := selfSigned(t,
		pkix.Name{CommonName: "outgoing", Organization: []string{"Mesh, Inc."}, Country: []string{"FR"}},
		[]asn1.RawValue{
			generalName(2, "a.example.com"),
			generalName(6, "spiffe://mesh/ns/default/sa/web"),
			ip, email,
			generalName(2, "b.example.com"),
		})
	got, ok := ClientCertValue(der)
	if !ok {
		t.Fatal("ClientCertValue refused a valid certificate")
	}
	want := "Hash=" + upperHash(der) +
		";DNS=a.example.com;SAN=spiffe://mesh/ns/default/sa/web;DNS=b.example.com" +
		`;Subject="CN=outgoing,O=Mesh\, Inc.,C=FR"`
	if got != want {
		t.Errorf("ClientCertValue =\n  %s\nwant\n  %s", got, want)
	}
}

func TestClientCertValueNoNamesNoSubject(t *testing.T) {
	der := selfSigned(t, pkix.Name{}, nil)
	got, ok := ClientCertValue(der)
	if want := "Hash=" + upperHash(der); !ok || got != want {
		t.Errorf("ClientCertValue = %q, %v; want %q", got, ok, want)
	}
}

func TestClientCertValueDropsUnsafeNames(t *testing.T) {
	der := selfSigned(t, pkix.Name{CommonName: "x"}, []asn1.RawValue{
		generalName(2, "evil\r\nX-Injected: 1"),
		generalName(2, "ok.example.com"),
	})
	got, ok := ClientCertValue(der)
	if !ok {
		t.Fatal("ClientCertValue refused the certificate")
	}
	if strings.ContainsAny(got, "\r\n") || !strings.Contains(got, ";DNS=ok.example.com") {
		t.Errorf("ClientCertValue = %q; want the CR/LF name dropped and the safe one kept", got)
	}
}

func TestClientCertValueRejectsGarbage(t *testing.T) {
	if v, ok := ClientCertValue([]byte{0x30, 0x03, 0x02, 0x01}); ok {
		t.Errorf("ClientCertValue(garbage) = %q, true", v)
	}
}

func TestParseAltNamesErrors(t *testing.T) {
	for _, in := range [][]byte{nil, {0x04, 0x00}, {0x30, 0x05, 0x82}, {0x30, 0x00, 0x00}} {
		if err := ParseAltNames(in, func(AltNameKind, string) {}); err == nil {
			t.Errorf("ParseAltNames(% x) = nil; want an error", in)
		}
	}
}

func FuzzParseAltNames(f *testing.F) {
	seed, _ := asn1.Marshal([]asn1.RawValue{generalName(2, "a.example"), generalName(6, "urn:x"), generalName(1, "e@x")})
	f.Add(seed)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		n := 0
		err := ParseAltNames(in, func(kind AltNameKind, name string) {
			if kind != AltNameDNS && kind != AltNameURI {
				t.Fatalf("reported kind %d", kind)
			}
			if len(name) > len(in) {
				t.Fatalf("name longer than the input")
			}
			n++
		})
		if err != nil && n > 0 && len(in) < 2 {
			t.Fatalf("names reported from a %d-byte input", len(in))
		}
	})
}

func BenchmarkClientCertValue(b *testing.B) {
	der := selfSigned(b, pkix.Name{CommonName: "caller"}, []asn1.RawValue{generalName(2, "caller.example.com")})
	b.ReportAllocs()
	for b.Loop() {
		ClientCertValue(der)
	}
}

func TestServerEdgeClientCertCache(t *testing.T) {
	a := selfSigned(t, pkix.Name{CommonName: "a"}, nil)
	b := selfSigned(t, pkix.Name{CommonName: "b"}, nil)
	e := &ServerEdge{ForwardClientCert: true}
	for i, der := range [][]byte{a, a, b, a} {
		hdr := http.Header{}
		e.Apply(hdr, fwdRequest("192.0.2.1:1", "", "/"), Conn{PeerCertDER: der}, time.Now())
		want, _ := ClientCertValue(der)
		if got := hdr.Get(HeaderForwardedClientCert); got != want {
			t.Errorf("request %d: x-forwarded-client-cert = %q; want %q", i, got, want)
		}
	}
}

func BenchmarkServerEdgeClientCertCached(b *testing.B) {
	der := selfSigned(b, pkix.Name{CommonName: "caller"}, []asn1.RawValue{generalName(2, "caller.example.com")})
	e := &ServerEdge{ForwardClientCert: true}
	r := fwdRequest("192.0.2.1:1", "", "/")
	hdr := http.Header{}
	b.ReportAllocs()
	for b.Loop() {
		e.Apply(hdr, r, Conn{PeerCertDER: der}, time.Time{})
	}
}

func TestClientCertByName(t *testing.T) {
	der := selfSigned(t, pkix.Name{CommonName: "caller"}, []asn1.RawValue{generalName(6, "spiffe://mesh/caller")})
	want, _ := ClientCertValue(der)
	e := &ServerEdge{ClientCertByName: true}
	for _, tt := range []struct {
		name    string
		conn    Conn
		forward bool
		want    []string // nil: no header
	}{
		{"certificate, forwarded", Conn{PeerCertDER: der}, true, []string{want}},
		{"certificate, not forwarded: the caller's header", Conn{PeerCertDER: der}, false, []string{"Hash=FORGED"}},
		{"no certificate, forwarded: the caller's header removed", Conn{}, true, nil},
		{"no certificate, not forwarded", Conn{}, false, []string{"Hash=FORGED"}},
		{"unparseable certificate, forwarded", Conn{PeerCertDER: []byte("junk")}, true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := fwdRequest("192.0.2.1:1", "", "/")
			r.Header = http.Header{HeaderForwardedClientCert: {"Hash=FORGED"}, "X-Other": {"1"}}
			e.Apply(r.Header, r, tt.conn, time.Now())
			if v := r.Header[HeaderForwardedClientCert]; len(v) != 1 || v[0] != "Hash=FORGED" {
				t.Fatalf("the edge changed x-forwarded-client-cert to %q; the bound name decides", v)
			}
			r = r.WithContext(e.ClientCertContext(r.Context(), tt.conn))
			before := maps.Clone(r.Header)
			out, resolved := ResolveClientCert(r, tt.forward)
			if resolved != tt.forward {
				t.Fatalf("ResolveClientCert resolved = %v; want %v", resolved, tt.forward)
			}
			if !resolved {
				out = r.Header
			}
			if got := out[HeaderForwardedClientCert]; !slices.Equal(got, tt.want) || (got == nil) != (tt.want == nil) {
				t.Errorf("x-forwarded-client-cert = %q; want %q", got, tt.want)
			}
			if len(out) != len(tt.want)+1 || out.Get("X-Other") != "1" {
				t.Errorf("resolved header %q; want X-Other and only the resolved x-forwarded-client-cert", out)
			}
			// A retry resolves the same request again, perhaps for another
			// bound name: the request's own header must be left as it was.
			if !maps.EqualFunc(r.Header, before, slices.Equal) {
				t.Errorf("ResolveClientCert changed its input: %q, was %q", r.Header, before)
			}
		})
	}
}

func TestResolveClientCertNothingPending(t *testing.T) {
	r := fwdRequest("192.0.2.1:1", "", "/")
	r.Header = http.Header{HeaderForwardedClientCert: {"from the app"}}
	if out, resolved := ResolveClientCert(r, true); resolved || out != nil {
		t.Errorf("ResolveClientCert = %q, %v on a request the edge did not mark; want nil, false", out, resolved)
	}
	// ForwardClientCert (io.l5d.global) decides at the edge and puts
	// nothing aside, even with ClientCertByName set.
	e := &ServerEdge{ForwardClientCert: true, ClientCertByName: true}
	e.Apply(r.Header, r, Conn{}, time.Now())
	if ctx := e.ClientCertContext(r.Context(), Conn{}); ctx != r.Context() {
		t.Error("global forwardClientCert put a value aside in the context")
	}
	if len(r.Header) != 0 {
		t.Errorf("global forwardClientCert left %q; want the forged header removed", r.Header)
	}
}
