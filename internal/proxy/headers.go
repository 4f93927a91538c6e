package proxy

import (
	"net/http"
	"strings"
)

// Canonical (net/http) forms of the l5d-* headers.
const (
	HeaderCtxDtab     = "L5d-Ctx-Dtab"
	HeaderDtab        = "L5d-Dtab"
	HeaderCtxDeadline = "L5d-Ctx-Deadline"
	HeaderCtxTrace    = "L5d-Ctx-Trace"
	HeaderSample      = "L5d-Sample"
	HeaderReqID       = "L5d-Reqid"
	HeaderDstService  = "L5d-Dst-Service"
	HeaderDstClient   = "L5d-Dst-Client"
	HeaderDstResidual = "L5d-Dst-Residual"
	HeaderErr         = "L5d-Err"
	HeaderRetryable   = "L5d-Retryable"
	HeaderSuccess     = "L5d-Success-Class"
)

// hopHeaders are the hop-by-hop headers of RFC 7230 §6.1 (plus the
// non-standard Proxy-Connection and Keep-Alive), removed in both
// directions. "Te" and "Trailer" are the canonical forms of TE/Trailer.
var hopHeaders = []string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// RemoveHopByHop deletes the headers named in Connection and then the
// hop-by-hop headers from h.
func RemoveHopByHop(h http.Header) {
	removeHop(h, hopKeys(h))
}

// hopKeys reports which of hopHeaders h holds, as bits in their order.
// For a small header, one pass over its keys with string compares costs
// less than hashing nine names to delete them (most messages carry none
// but Connection); a large one gets all bits.
func hopKeys(h http.Header) (bits uint16) {
	if len(h) > 16 {
		return 1<<len(hopHeaders) - 1
	}
	for k := range h {
		switch k {
		case "Connection":
			bits |= 1 << 0
		case "Proxy-Connection":
			bits |= 1 << 1
		case "Keep-Alive":
			bits |= 1 << 2
		case "Proxy-Authenticate":
			bits |= 1 << 3
		case "Proxy-Authorization":
			bits |= 1 << 4
		case "Te":
			bits |= 1 << 5
		case "Trailer":
			bits |= 1 << 6
		case "Transfer-Encoding":
			bits |= 1 << 7
		case "Upgrade":
			bits |= 1 << 8
		}
	}
	return bits
}

// removeHop is RemoveHopByHop for the hop-by-hop headers in bits.
func removeHop(h http.Header, bits uint16) {
	if bits == 0 {
		return
	}
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			switch f = trimOWS(f); {
			case f == "":
			case strings.EqualFold(f, "close"):
				delete(h, "Close") // the common options, without canonicalising
			case strings.EqualFold(f, "keep-alive"):
				delete(h, "Keep-Alive")
			default:
				h.Del(f)
			}
		}
	}
	for i, k := range hopHeaders {
		if bits&(1<<i) != 0 {
			delete(h, k)
		}
	}
}

// PrepareOutbound applies the hop-by-hop rules to a request about to be
// forwarded: hop-by-hop headers go, but "Te: trailers" is kept (the
// client asked for trailers, and gRPC depends on it) and an upgrade
// request keeps "Connection: Upgrade" and its Upgrade header so that
// WebSockets pass through. It returns the requested upgrade protocol.
func PrepareOutbound(h http.Header) (upgrade string) {
	bits := hopKeys(h)
	if bits == 0 {
		return ""
	}
	upgrade = UpgradeType(h)
	teTrailers := HasToken(h["Te"], "trailers")
	removeHop(h, bits)
	if teTrailers {
		h["Te"] = teTrailersValue
	}
	if upgrade != "" {
		h["Connection"] = connectionUpgrade
		h["Upgrade"] = []string{upgrade}
	}
	return upgrade
}

var (
	teTrailersValue   = []string{"trailers"}
	connectionUpgrade = []string{"Upgrade"}
)

// UpgradeType returns the Upgrade header's value when Connection lists
// "upgrade", else "".
func UpgradeType(h http.Header) string {
	if !HasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// HasToken reports whether any comma-separated element of vs equals tok,
// case-insensitively.
func HasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(trimOWS(f), tok) {
				return true
			}
		}
	}
	return false
}

// trimOWS trims optional whitespace (SP and HTAB) around a token.
func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// AppendVia appends this hop to the Via header: "1.1 linkerd" (or
// "1.0 linkerd" for an HTTP/1.0 message), as Linkerd does.
func AppendVia(h http.Header, protoMajor, protoMinor int) {
	v, vs := via11, via11Value
	if protoMajor == 1 && protoMinor == 0 {
		v, vs = via10, via10Value
	}
	if old := h["Via"]; len(old) > 0 {
		h["Via"] = []string{strings.Join(old, ", ") + ", " + v}
		return
	}
	// Shared, read-only value: header values are replaced, never edited
	// in place, by everything that handles a forwarded message.
	h["Via"] = vs
}

const (
	via11 = "1.1 linkerd"
	via10 = "1.0 linkerd"
)

var (
	via11Value = []string{via11}
	via10Value = []string{via10}
)

// ViaDepth counts the comma-separated entries of the Via header (for
// maxCallDepth loop protection).
func ViaDepth(h http.Header) int {
	n := 0
	for _, v := range h["Via"] {
		n += strings.Count(v, ",") + 1
	}
	return n
}

// StripL5d deletes every header whose name starts with "l5d-" (any case).
func StripL5d(h http.Header) {
	for k := range h {
		if IsL5d(k) {
			delete(h, k)
		}
	}
}

// IsL5d reports whether header name k starts with "l5d-", case-insensitively.
func IsL5d(k string) bool {
	return len(k) >= 4 && (k[0] == 'l' || k[0] == 'L') && k[1] == '5' && (k[2] == 'd' || k[2] == 'D') && k[3] == '-'
}
