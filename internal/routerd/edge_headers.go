package routerd

import (
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// serverEdge builds the optional request headers of one router server
// (addForwardedHeader, timestampHeader, client.forwardClientCert); nil
// when it adds none, so that such a server pays nothing per request.
func serverEdge(routerLabel string, fwd *ForwardedHeader, timestampHeader string, xfcc xfccMode) *proxy.ServerEdge {
	if fwd == nil && timestampHeader == "" && xfcc == xfccOff {
		return nil
	}
	e := &proxy.ServerEdge{TimestampHeader: timestampHeader, ForwardClientCert: xfcc == xfccAll, ClientCertByName: xfcc == xfccByName}
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

// xfccMode is how a router adds x-forwarded-client-cert
// (client.forwardClientCert).
type xfccMode uint8

const (
	// xfccOff: never; the caller's header passes through.
	xfccOff xfccMode = iota
	// xfccAll: on every request, at the server (io.l5d.global).
	xfccAll
	// xfccByName: as the bound name's io.l5d.static entries say, at the
	// client tier (proxy.ResolveClientCert, called by xfccTransport).
	xfccByName
)

// forwardsClientCert returns how a router's client policy adds
// x-forwarded-client-cert (global is the io.l5d.global block's
// forwardClientCert), and whether an io.l5d.static entry sets
// forwardClientCert where it is not honoured: http and h2 routers apply
// it per bound name (xfccTransport); no other client has the key.
func forwardsClientCert[P any](p *Policy[P], global bool) (mode xfccMode, unsupported bool) {
	if p.Kind != PolicyStatic {
		if global {
			return xfccAll, false
		}
		return xfccOff, false
	}
	var probe P
	if _, ok := forwardClientCertOf(&probe); !ok {
		for _, c := range p.Configs {
			if _, set := c.raw.Get("forwardClientCert"); set {
				return xfccOff, true
			}
		}
		return xfccOff, false
	}
	for _, r := range xfccRules(p) {
		if r.on {
			return xfccByName, false
		}
	}
	// No entry turns it on: no name adds the header.
	return xfccOff, false
}

// forwardClientCertOf returns the forwardClientCert of client params
// (*HTTPClientParams, *H2ClientParams); ok is false for params without
// the key.
func forwardClientCertOf(params any) (on, ok bool) {
	switch c := params.(type) {
	case *HTTPClientParams:
		return c.ForwardClientCert, true
	case *H2ClientParams:
		return c.ForwardClientCert, true
	}
	return false, false
}

// xfccRule is an io.l5d.static client entry that sets forwardClientCert.
type xfccRule struct {
	prefix config.PathPattern
	on     bool
}

// xfccRules returns the entries of p that set forwardClientCert, in file
// order.
func xfccRules[P any](p *Policy[P]) []xfccRule {
	var out []xfccRule
	for _, c := range p.Configs {
		if _, set := c.raw.Get("forwardClientCert"); !set {
			continue
		}
		var params P
		config.ApplyDefaults(&params)
		// Each entry decoded cleanly when the file was loaded.
		_ = c.raw.Decode(&params, "prefix")
		on, _ := forwardClientCertOf(&params)
		out = append(out, xfccRule{prefix: c.Prefix, on: on})
	}
	return out
}

// forwardsFor reports whether forwardClientCert is on for the bound name
// id: as Policy.For layers the entries, the last matching entry that sets
// it decides, and it is off (the default) when none does.
func forwardsFor(rules []xfccRule, id []string) bool {
	for i := len(rules) - 1; i >= 0; i-- {
		if _, ok := rules[i].prefix.Match(id); ok {
			return rules[i].on
		}
	}
	return false
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
