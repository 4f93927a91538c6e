package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"maps"
	"net/http"
)

// HeaderForwardedClientCert carries the inbound connection's client
// certificate to the endpoint (client.forwardClientCert).
const HeaderForwardedClientCert = "X-Forwarded-Client-Cert"

// ClientCertValue formats the x-forwarded-client-cert value Linkerd 1.x
// writes for a client certificate (DER):
//
//	Hash=<SHA-256 of the DER, upper-case hex>[;SAN=<URI>|;DNS=<name>]...[;Subject="<DN>"]
//
// The URI and DNS subject alternative names come in the order the
// certificate lists them; the subject is the RFC 2253 form of the
// distinguished name and is left out when empty. ok is false when der is
// not a certificate. Names holding bytes a header cannot carry are left
// out.
func ClientCertValue(der []byte) (v string, ok bool) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(der)
	b := make([]byte, 0, 128)
	b = append(b, "Hash="...)
	const hexUpper = "0123456789ABCDEF"
	for _, c := range sum {
		b = append(b, hexUpper[c>>4], hexUpper[c&0xf])
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		// x509 already accepted the extension; a name list it could
		// parse but this cannot is left out rather than failing.
		_ = ParseAltNames(ext.Value, func(kind AltNameKind, name string) {
			if !headerSafe(name) {
				return
			}
			if kind == AltNameURI {
				b = append(b, ";SAN="...)
			} else {
				b = append(b, ";DNS="...)
			}
			b = append(b, name...)
		})
	}
	if s := cert.Subject.String(); s != "" && headerSafe(s) {
		b = append(b, `;Subject="`...)
		b = append(b, s...)
		b = append(b, '"')
	}
	return string(b), true
}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// AltNameKind is the kind of a subject alternative name that
// x-forwarded-client-cert reports.
type AltNameKind uint8

// The GeneralName kinds Linkerd reports (RFC 5280 §4.2.1.6).
const (
	AltNameDNS AltNameKind = 2
	AltNameURI AltNameKind = 6
)

var errAltNames = errors.New("malformed subjectAltName extension")

// ParseAltNames calls fn with each DNS and URI name of a DER
// subjectAltName extension value (a SEQUENCE OF GeneralName), in order.
// Other kinds of names are skipped.
func ParseAltNames(ext []byte, fn func(kind AltNameKind, name string)) error {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(ext, &seq)
	if err != nil {
		return err
	}
	if len(rest) != 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence || seq.Class != asn1.ClassUniversal {
		return errAltNames
	}
	for b := seq.Bytes; len(b) > 0; {
		var gn asn1.RawValue
		if b, err = asn1.Unmarshal(b, &gn); err != nil {
			return err
		}
		if gn.Class != asn1.ClassContextSpecific || gn.IsCompound {
			continue
		}
		switch AltNameKind(gn.Tag) {
		case AltNameDNS, AltNameURI:
			fn(AltNameKind(gn.Tag), string(gn.Bytes))
		}
	}
	return nil
}

// headerSafe reports whether s can go in a header value as it is: no
// control characters (a name carrying CR or LF must not split the
// header). A `"` in the subject comes escaped by its RFC 2253 form.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// x-forwarded-client-cert per bound name. A server edge cannot decide
// alone when the setting depends on the bound name (io.l5d.static client
// entries), which is known only at the client tier: the edge computes the
// value from its connection, as for every name, and the request carries
// it in its context (ClientCertContext); ResolveClientCert, called by the
// client tier with the bound name's setting, turns it into the header or
// leaves the caller's header alone.

// pendingCertKey is the request-context key of a value put aside.
type pendingCertKey struct{}

// pendingCert is the x-forwarded-client-cert value of a request's inbound
// connection; ok is false when it had no (usable) client certificate.
type pendingCert struct {
	value string
	ok    bool
}

// ClientCertContext returns ctx carrying the x-forwarded-client-cert value
// of c's certificate for ResolveClientCert, when the edge leaves the header
// to the bound name (ClientCertByName without ForwardClientCert); else ctx.
func (e *ServerEdge) ClientCertContext(ctx context.Context, c Conn) context.Context {
	if !e.ClientCertByName || e.ForwardClientCert {
		return ctx
	}
	v, ok := e.clientCert(c.PeerCertDER)
	return context.WithValue(ctx, pendingCertKey{}, pendingCert{value: v, ok: ok})
}

// ResolveClientCert returns the header of one attempt of r when its server
// edge left x-forwarded-client-cert to the bound name (ClientCertContext)
// and forward says the bound name wants it: a copy of r's header (sharing
// the value lists, so that r, which a retry sends again, perhaps to another
// bound name, stays as it is) where x-forwarded-client-cert describes the
// inbound connection's certificate, or is removed when it had none (as
// ServerEdge.ForwardClientCert does). Otherwise it returns nil, false, and
// r goes as it is, with whatever the caller sent.
func ResolveClientCert(r *http.Request, forward bool) (http.Header, bool) {
	if !forward {
		return nil, false
	}
	pc, ok := r.Context().Value(pendingCertKey{}).(pendingCert)
	if !ok {
		return nil, false
	}
	out := maps.Clone(r.Header)
	if out == nil {
		out = http.Header{}
	}
	if pc.ok {
		out[HeaderForwardedClientCert] = []string{pc.value}
	} else {
		delete(out, HeaderForwardedClientCert)
	}
	return out, true
}
