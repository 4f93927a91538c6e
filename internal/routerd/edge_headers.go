package routerd

import (
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// serverEdge builds the optional request headers of one router server
// (addForwardedHeader, timestampHeader, client.forwardClientCert); nil
// when it adds none, so that such a server pays nothing per request.
func serverEdge(routerLabel string, fwd *ForwardedHeader, timestampHeader string, forwardClientCert bool) *proxy.ServerEdge {
	if fwd == nil && timestampHeader == "" && !forwardClientCert {
		return nil
	}
	e := &proxy.ServerEdge{TimestampHeader: timestampHeader, ForwardClientCert: forwardClientCert}
	if fwd != nil {
		e.Forwarded = &proxy.Forwarded{By: fwd.By.labeler(routerLabel), For: fwd.For.labeler(routerLabel)}
	}
	return e
}

// labeler returns the runtime form of a validated labeler.
func (l *Labeler) labeler(routerLabel string) proxy.Labeler {
	switch l.Kind {
	case "router":
		return proxy.NewStaticLabeler(routerLabel)
	case "static":
		return proxy.NewStaticLabeler(l.Label)
	}
	k, _ := proxy.ParseLabelerKind(l.Kind)
	return proxy.Labeler{Kind: k}
}

// forwardsClientCert reports whether an http or h2 router's client policy
// turns forwardClientCert on for every name (io.l5d.global), and whether
// some io.l5d.static entry sets it, which is not honoured (the header is
// written at the server, before the name is bound).
func forwardsClientCert[P any](p *Policy[P], global bool) (on, perPrefix bool) {
	if p.Kind != PolicyStatic {
		return global, false
	}
	for _, c := range p.Configs {
		if _, ok := c.raw.Get("forwardClientCert"); ok {
			return false, true
		}
	}
	return false, false
}

// validateTimestampHeader checks servers[].timestampHeader: a header name
// (an RFC 9110 token) or empty.
func validateTimestampHeader(name string) error {
	for i := 0; i < len(name); i++ {
		if !isHeaderNameByte(name[i]) {
			return config.FieldError("timestampHeader", "%q is not a valid header name (byte %d)", name, i)
		}
	}
	return nil
}

// validateObfuscatedLabel checks a static Forwarded label: RFC 7239 §6.3
// obfuscated identifiers are `_` followed by letters, digits, `.`, `_` or
// `-` (the `_` is added when missing).
func validateObfuscatedLabel(label string) error {
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return config.FieldError("label", "%q is not a valid obfuscated identifier (RFC 7239 §6.3 allows letters, digits, '.', '_' and '-')", label)
		}
	}
	return nil
}

func isHeaderNameByte(c byte) bool {
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
