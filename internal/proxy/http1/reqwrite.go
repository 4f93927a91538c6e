package http1

import (
	"bufio"
	"net/http"
	"net/http/httptrace"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// writeRequestHead writes the head of a bodiless client request to bw
// the way (*http.Request).Write does, without its allocations (a
// transferWriter, formatted strings, the sorted copy of the header). It
// handles the fast path's common case only; for anything else — a body,
// trailers, a transfer encoding, CONNECT, an opaque URL, a Host that needs
// punycode or has a zone, an httptrace.ClientTrace to call — it writes
// nothing and returns false, and the caller uses Request.Write.
//
// The one difference from Request.Write: header fields are written in map
// order, not sorted (the order of fields with different names carries no
// meaning, RFC 9110 §5.3; a field's values keep their order).
func writeRequestHead(bw *bufio.Writer, r *http.Request) bool {
	if r.Body != nil && r.Body != http.NoBody || r.ContentLength != 0 ||
		len(r.TransferEncoding) > 0 || len(r.Trailer) > 0 || r.Method == http.MethodConnect {
		return false
	}
	u := r.URL
	if u == nil || u.Opaque != "" {
		return false
	}
	host := r.Host
	if host == "" {
		host = u.Host
	}
	if !plainHost(host) {
		return false
	}
	if httptrace.ContextClientTrace(r.Context()) != nil {
		return false
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	query := u.ForceQuery || u.RawQuery != ""
	if hasCTL(path) || hasCTL(u.RawQuery) {
		return false // Request.Write reports the error
	}

	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(path)
	if query {
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	h := r.Header
	if ua, ok := h["User-Agent"]; ok {
		if len(ua) > 0 && ua[0] != "" {
			writeField(bw, "User-Agent", ua[0])
		}
	} else {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if r.Close && !hasCloseToken(h["Connection"]) {
		bw.WriteString("Connection: close\r\n")
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		// As Request.Write: many servers expect a length for these.
		bw.WriteString("Content-Length: 0\r\n")
	}
	for k, vs := range h {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // dropped, as Request.Write does
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	bw.WriteString("\r\n")
	return true
}

// writeField writes "k: v\r\n" with v's CR and LF turned into spaces and
// surrounding blanks trimmed, as Request.Write does.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	if strings.ContainsAny(v, "\r\n") {
		v = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, v)
	}
	bw.WriteString(strings.Trim(v, " \t"))
	bw.WriteString("\r\n")
}

// plainHost reports whether Request.Write would send host unchanged: an
// ASCII, valid Host value without an IPv6 zone.
func plainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		if c := host[i]; c >= 0x80 || c == '%' {
			return false
		}
	}
	return httpguts.ValidHostHeader(host)
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}

// hasCloseToken reports whether a Connection header's first value lists
// "close" (Request.Write looks at the first value only).
func hasCloseToken(vs []string) bool {
	if len(vs) == 0 {
		return false
	}
	for tok := range strings.SplitSeq(vs[0], ",") {
		if strings.EqualFold(strings.TrimSpace(tok), "close") {
			return true
		}
	}
	return false
}
