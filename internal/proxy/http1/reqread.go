package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"

	"golang.org/x/net/http/httpguts"
)

// readRequestHead parses the plain kind of request head a router mostly
// sees — an origin-form GET-like request without a body, HTTP/1.1 or
// HTTP/1.0, well-formed CRLF-terminated fields — with about half the
// allocations of http.ReadRequest: the Request and its URL are one
// allocation, one string holds the head and every field slices it, and
// the values of all fields share one slice.
//
// head is the complete head as peekHead returned it (request line,
// fields, blank line), still unread in br; the caller has checked it with
// simpleRequest (no body, Expect or Upgrade). readRequestHead consumes it
// and returns the request, or declines (ok false, nothing consumed) and
// the caller uses http.ReadRequest: CONNECT, a request target
// that is not a plain origin-form path (absolute-form, '%', '#', a bare
// '?', bytes a URL would re-escape), a method that is not a token,
// Host missing or repeated, Trailer, Pragma, obs-fold, bare LF, a field
// name that is not a token, or a control byte in a value. What it accepts
// it returns as http.ReadRequest would
// (TestReadRequestHeadMatchesReadRequest, FuzzReadRequestHead).
func readRequestHead(br *bufio.Reader, head []byte) (req *http.Request, ok bool) {
	eol := bytes.IndexByte(head, '\n')
	if eol < 0 || eol+1 > len(head)-2 {
		return nil, false
	}
	line := head[:eol]
	if len(line) < 1 || line[len(line)-1] != '\r' {
		return nil, false
	}
	line = line[:len(line)-1]
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return nil, false
	}
	method, target, proto := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	var minor int
	switch string(proto) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
		minor = 0
	default:
		return nil, false
	}
	if !token(method) || string(method) == http.MethodConnect {
		return nil, false
	}
	path, query, ok := plainTarget(target)
	if !ok {
		return nil, false
	}

	s := string(head)
	fields := head[eol+1 : len(head)-2]
	n := bytes.Count(fields, []byte("\n"))
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	hosts, host := 0, ""
	for off := eol + 1; off < len(s)-2; {
		key, v, next, ok := nextField(s, off)
		if !ok {
			return nil, false
		}
		off = next
		switch key {
		case "Trailer", "Pragma":
			// net/http derives Cache-Control from Pragma and reads
			// Trailer; leave both to it.
			return nil, false
		case "Host":
			// Like http.ReadRequest: Request.Host, not a header field.
			if hosts++; hosts > 1 || !httpguts.ValidHostHeader(v) {
				return nil, false
			}
			host = v
			continue
		}
		vals = append(vals, v)
		if prev, dup := h[key]; dup {
			h[key] = append(prev, v)
		} else {
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if hosts != 1 {
		return nil, false
	}
	br.Discard(len(head))

	// Slice the strings out of s, which the header already holds.
	m := &requestAndURL{}
	m.url.Path = s[sp1+1 : sp1+1+len(path)]
	if query != nil {
		start := sp1 + 1 + len(path) + 1
		m.url.RawQuery = s[start : start+len(query)]
	}
	req = &m.req
	*req = http.Request{
		Method:     s[:sp1],
		URL:        &m.url,
		Proto:      s[sp2+1 : eol-1],
		ProtoMajor: 1,
		ProtoMinor: minor,
		Header:     h,
		Body:       http.NoBody,
		Host:       host,
		RequestURI: s[sp1+1 : sp2],
	}
	conn := h["Connection"]
	req.Close = httpguts.HeaderValuesContainsToken(conn, "close") ||
		minor == 0 && !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	return req, true
}

// requestAndURL puts a request and its URL in one allocation.
type requestAndURL struct {
	req http.Request
	url url.URL
}

// plainTarget splits an origin-form request target into its path and
// query when url.ParseRequestURI would give exactly those back, unescaped
// and without RawPath: a path of unreserved bytes and the sub-delimiters
// a path leaves alone, then optionally '?' and a non-empty query of
// printable bytes other than '#'. query is nil when there is no '?'.
func plainTarget(t []byte) (path, query []byte, ok bool) {
	if len(t) == 0 || t[0] != '/' || len(t) > 1 && t[1] == '/' {
		return nil, nil, false
	}
	q := bytes.IndexByte(t, '?')
	path = t
	if q >= 0 {
		path, query = t[:q], t[q+1:]
		if len(query) == 0 {
			return nil, nil, false // net/url sets ForceQuery
		}
		for _, c := range query {
			if c <= ' ' || c >= 0x7f || c == '#' {
				return nil, nil, false
			}
		}
	}
	for _, c := range path {
		if !pathByte[c] {
			return nil, nil, false
		}
	}
	return path, query, true
}

// pathByte holds the bytes a URL path keeps as they are: net/url neither
// unescapes nor re-escapes them.
var pathByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~/$&+,:;=@" {
		t[c] = true
	}
	return t
}()

// token reports whether b is a non-empty RFC 9110 token.
func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !httpguts.IsTokenRune(rune(c)) {
			return false
		}
	}
	return true
}
