package proxy

import (
	"bytes"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
)

// This file holds the optional headers a router server adds to the
// requests it forwards (spec/headers-admin.md §2.7): the RFC 7239
// Forwarded element (servers[].addForwardedHeader), a receive timestamp
// (servers[].timestampHeader) and x-forwarded-client-cert
// (client.forwardClientCert, clientcert.go). A server with none of them
// has a nil *ServerEdge and pays nothing per request.

// LabelerKind is how a Forwarded `by` or `for` parameter is labelled.
type LabelerKind uint8

// The labeler kinds of Linkerd's addForwardedHeader.
const (
	// LabelRequestRandom is a fresh obfuscated label per request (the
	// default, as RFC 7239 §6.3 asks).
	LabelRequestRandom LabelerKind = iota
	// LabelConnectionRandom is an obfuscated label that stays the same
	// for every request of one connection.
	LabelConnectionRandom
	// LabelIP is the address without the port: 192.0.2.43, "[2001:db8::17]".
	LabelIP
	// LabelIPPort is the address with the port: "192.0.2.43:80".
	LabelIPPort
	// LabelStatic is a fixed obfuscated label (static and router kinds).
	LabelStatic
)

// Labeler labels one end of the forwarded connection.
type Labeler struct {
	Kind LabelerKind
	// Static is the label of LabelStatic, already formatted (see
	// NewStaticLabeler).
	Static string
}

// NewStaticLabeler returns the labeler of Linkerd's `static` and
// `router` kinds: label as an obfuscated identifier, with `_` prepended
// unless it already starts with one. A label that is not a valid
// obfuscated node (RFC 7239 §6.3: `_` then letters, digits, `.`, `_`,
// `-`) is sent as a quoted string so that the header stays well formed.
func NewStaticLabeler(label string) Labeler {
	if len(label) == 0 || label[0] != '_' {
		label = "_" + label
	}
	return Labeler{Kind: LabelStatic, Static: string(appendValue(nil, label))}
}

// ParseLabelerKind maps a config kind to its LabelerKind; `router` and
// `static` are both LabelStatic (built with NewStaticLabeler).
func ParseLabelerKind(kind string) (LabelerKind, bool) {
	switch kind {
	case "requestRandom", "":
		return LabelRequestRandom, true
	case "connectionRandom":
		return LabelConnectionRandom, true
	case "ip":
		return LabelIP, true
	case "ip:port":
		return LabelIPPort, true
	case "router", "static":
		return LabelStatic, true
	}
	return 0, false
}

// Forwarded is a server's addForwardedHeader.
type Forwarded struct {
	// By labels this router's end of the connection, For the caller's.
	By, For Labeler
}

// ServerEdge is the set of optional request headers one router server
// adds. The zero value adds nothing; servers without any use a nil
// pointer.
type ServerEdge struct {
	// Forwarded, when set, appends an RFC 7239 Forwarded element.
	Forwarded *Forwarded
	// TimestampHeader, when set, names a header that receives the time
	// the request was received, in milliseconds since the Unix epoch.
	TimestampHeader string
	// ForwardClientCert sets x-forwarded-client-cert from the client
	// certificate of the inbound TLS connection, and removes any value
	// the caller sent when there is none.
	ForwardClientCert bool
	// ClientCertByName leaves x-forwarded-client-cert to the client tier,
	// where the bound name decides (io.l5d.static entries setting
	// forwardClientCert): the value travels in the request's context
	// (ClientCertContext) and each attempt calls ResolveClientCert
	// (clientcert.go). Ignored when ForwardClientCert is set.
	ClientCertByName bool

	// lastCert remembers the last client certificate formatted: the
	// requests of one connection, and mostly one caller (a linker-to-
	// linker peer), carry the same certificate again and again.
	lastCert atomic.Pointer[formattedCert]
}

type formattedCert struct {
	der []byte
	v   string
	ok  bool
}

// Conn describes the inbound connection of a request.
type Conn struct {
	// Local is this server's end (nil when unknown); the caller's end is
	// the request's RemoteAddr.
	Local net.Addr
	// PeerCertDER is the client certificate of a TLS connection, DER
	// encoded (nil when the connection is plain or the client sent none).
	PeerCertDER []byte
	// Scheme is the request's scheme where the protocol always carries
	// one (h2's :scheme); empty for HTTP/1.1, where only an absolute-form
	// request target names it.
	Scheme string
}

// Apply adds the configured headers to hdr, the outbound copy of r's
// headers; received is when r arrived.
func (e *ServerEdge) Apply(hdr http.Header, r *http.Request, c Conn, received time.Time) {
	if e.TimestampHeader != "" {
		k := http.CanonicalHeaderKey(e.TimestampHeader)
		hdr[k] = append(hdr[k], strconv.FormatInt(received.UnixMilli(), 10))
	}
	if f := e.Forwarded; f != nil {
		hdr["Forwarded"] = append(hdr["Forwarded"], f.Element(r, c))
	}
	if e.ForwardClientCert {
		if v, ok := e.clientCert(c.PeerCertDER); ok {
			hdr[HeaderForwardedClientCert] = []string{v}
		} else {
			delete(hdr, HeaderForwardedClientCert)
		}
	}
}

// clientCert returns ClientCertValue(der), from the cache when der is
// the certificate formatted last; ok is false without a certificate.
func (e *ServerEdge) clientCert(der []byte) (string, bool) {
	if der == nil {
		return "", false
	}
	if f := e.lastCert.Load(); f != nil && bytes.Equal(f.der, der) {
		return f.v, f.ok
	}
	v, ok := ClientCertValue(der)
	e.lastCert.Store(&formattedCert{der: der, v: v, ok: ok})
	return v, ok
}

// Element returns the Forwarded element for r:
// `by=<label>;for=<label>[;host=<Host>][;proto=<scheme>]`. host is the
// request's Host (h2's :authority; Linkerd's h2 router names it
// `authority`, which RFC 7239 does not define, so `host` is used for
// both); proto is c.Scheme, or the scheme of an absolute-form HTTP/1.1
// request target.
func (f *Forwarded) Element(r *http.Request, c Conn) string {
	remote := parseAddrPort(r.RemoteAddr)
	var local netip.AddrPort
	if ta, ok := c.Local.(*net.TCPAddr); ok {
		local = ta.AddrPort()
	} else if c.Local != nil {
		local = parseAddrPort(c.Local.String())
	}
	b := make([]byte, 0, 64+len(r.Host))
	b = append(b, "by="...)
	b = f.By.appendLabel(b, local, remote, local)
	b = append(b, ";for="...)
	b = f.For.appendLabel(b, remote, remote, local)
	if r.Host != "" {
		b = append(b, ";host="...)
		b = appendValue(b, r.Host)
	}
	s := c.Scheme
	if s == "" && r.URL != nil {
		s = r.URL.Scheme
	}
	if s != "" {
		b = append(b, ";proto="...)
		b = appendValue(b, s)
	}
	return string(b)
}

// appendLabel appends the label of addr, one end of the connection
// between remote and local.
func (l Labeler) appendLabel(b []byte, addr, remote, local netip.AddrPort) []byte {
	switch l.Kind {
	case LabelStatic:
		return append(b, l.Static...)
	case LabelIP, LabelIPPort:
		ip := addr.Addr()
		if !ip.IsValid() || ip.IsUnspecified() {
			return append(b, "unknown"...)
		}
		ip = ip.Unmap().WithZone("")
		if l.Kind == LabelIP && ip.Is4() {
			return ip.AppendTo(b)
		}
		// An IPv6 address, or any address with a port, is not a token:
		// RFC 7239 §6 sends it as a quoted string.
		b = append(b, '"')
		if ip.Is6() {
			b = append(b, '[')
			b = ip.AppendTo(b)
			b = append(b, ']')
		} else {
			b = ip.AppendTo(b)
		}
		if l.Kind == LabelIPPort {
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(addr.Port()), 10)
		}
		return append(b, '"')
	case LabelConnectionRandom:
		if !remote.IsValid() {
			return append(b, "unknown"...)
		}
		// The connection's two ends identify it while it is open; a
		// keyed hash of them is the same label for each of its requests
		// and, without the process's secret seed, says nothing about
		// the addresses.
		var h maphash.Hash
		h.SetSeed(connSeed)
		var buf [64]byte
		h.Write(remote.AppendTo(buf[:0]))
		h.Write(local.AppendTo(buf[:0]))
		return appendObfuscated(b, h.Sum64())
	default:
		return appendObfuscated(b, rand.Uint64())
	}
}

var connSeed = maphash.MakeSeed()

const obfAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// appendObfuscated appends `_` and six letters or digits drawn from x,
// like Linkerd's `_6Oq8jJ`.
func appendObfuscated(b []byte, x uint64) []byte {
	b = append(b, '_')
	for range 6 {
		b = append(b, obfAlphabet[x%uint64(len(obfAlphabet))])
		x /= uint64(len(obfAlphabet))
	}
	return b
}

// parseAddrPort parses "ip:port" (IPv6 in brackets, possibly with a
// zone); the zero AddrPort when s is not one.
func parseAddrPort(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

// appendValue appends v as an RFC 7239 value: as it is when it is a
// token (RFC 9110 §5.6.2), else as a quoted string with `"` and `\`
// escaped. Bytes a quoted string cannot hold (controls) are dropped.
func appendValue(b []byte, v string) []byte {
	if isToken(v) {
		return append(b, v...)
	}
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\t' || (c >= 0x20 && c != 0x7f):
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func isToken(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isTchar(v[i]) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
