package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// readResponseHead parses the plain kind of response head a pooled
// endpoint connection mostly sees — HTTP/1.1, a final status with a body
// of known length, well-formed CRLF-terminated fields — with fewer
// allocations than http.ReadResponse: one string holds the whole head and
// every field slices it, and the values of all fields share one slice.
//
// It declines (ok false, nothing consumed from br) on anything else, and
// the caller uses http.ReadResponse: a head larger than br's buffer, a
// read error, another protocol version, a 1xx, 204 or 304 status, a HEAD
// or CONNECT request, Transfer-Encoding, Trailer, Pragma (net/http derives
// Cache-Control from it), a missing, repeated or unusual Content-Length,
// a Connection field other than one "close" or "keep-alive", obs-fold,
// bare LF, a field name that is not a token or a control byte in a value.
// What it accepts, it returns as http.ReadResponse would
// (TestReadResponseHeadMatchesReadResponse).
func readResponseHead(br *bufio.Reader, req *http.Request) (fr *fastResponse, ok bool) {
	if req.Method == http.MethodHead || req.Method == http.MethodConnect {
		return nil, false
	}
	b, ok, err := peekHead(br)
	if err != nil || !ok {
		return nil, false
	}
	eol := bytes.IndexByte(b, '\n')
	line := b[:eol]
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || line[len(line)-1] != '\r' {
		return nil, false
	}
	line = line[:len(line)-1]
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return nil, false
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 || code == http.StatusNoContent || code == http.StatusNotModified ||
		len(line) > 12 && line[12] != ' ' || !plainValue(line[12:]) {
		return nil, false
	}
	fields := b[eol+1 : len(b)-2] // each field line ends in CRLF
	n := bytes.Count(fields, []byte("\n"))

	s := string(b)
	off := eol + 1
	h := make(http.Header, n)
	vals := make([]string, 0, n)
	length, close, sawConn := int64(-1), false, false
	for off < len(s)-2 {
		key, v, next, ok := nextField(s, off)
		if !ok {
			return nil, false
		}
		off = next
		switch key {
		case "Transfer-Encoding", "Trailer", "Pragma":
			return nil, false
		case "Content-Length":
			if length >= 0 || len(v) == 0 || len(v) > 18 {
				return nil, false
			}
			length = 0
			for i := 0; i < len(v); i++ {
				if v[i] < '0' || v[i] > '9' {
					return nil, false
				}
				length = length*10 + int64(v[i]-'0')
			}
		case "Connection":
			switch {
			case sawConn:
				return nil, false
			case strings.EqualFold(v, "close"):
				// net/http drops it from the header, having set Close.
				close, sawConn = true, true
				continue
			case !strings.EqualFold(v, "keep-alive"):
				return nil, false
			}
			sawConn = true
		}
		vals = append(vals, v)
		if prev, dup := h[key]; dup {
			h[key] = append(prev, v)
		} else {
			h[key] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if length < 0 {
		return nil, false
	}
	br.Discard(len(b))
	fr = &fastResponse{}
	fr.Response = http.Response{
		Status:        s[9 : eol-1],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: length,
		Close:         close,
		Request:       req,
		Body:          http.NoBody,
	}
	if length > 0 {
		fr.lb = lengthBody{br: br, n: length}
		fr.Body = &fr.lb
	}
	return fr, true
}

// fastResponse is a response parsed by readResponseHead with its body
// readers, in one allocation.
type fastResponse struct {
	http.Response
	lb lengthBody
	cb connBody
}

// trimSpace trims the spaces and tabs around a field value.
func trimSpace(v string) string {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// plainValue reports whether b has no control byte other than HTAB.
func plainValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// canonical reports whether the token key is in canonical form already
// ("Content-Type"), so that it can be used without a copy.
func canonical(key string) bool {
	upper := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// lengthBody is a response body of known length read from a pooled
// connection's reader. Like net/http's, it reports io.EOF with the last
// bytes (so the connection goes back to the pool at once) and
// io.ErrUnexpectedEOF when the endpoint closes early.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	switch {
	case b.n == 0:
		err = io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Close does nothing: connBody, which wraps it, owns the connection.
func (b *lengthBody) Close() error { return nil }

// nextField reads the field line that starts at s[off] in a head whose
// lines end in CRLF: its canonical name, its value without the spaces
// around it, and where the next line starts. ok is false for anything the
// fast parsers leave to net/http: a bare LF, no colon, obs-fold (a line
// starting with a space has no valid name), a name that is not a token,
// or a control byte in the value.
func nextField(s string, off int) (key, value string, next int, ok bool) {
	end := strings.IndexByte(s[off:], '\n') + off
	if end <= off || s[end-1] != '\r' {
		return "", "", 0, false
	}
	kv := s[off : end-1]
	colon := strings.IndexByte(kv, ':')
	if colon <= 0 {
		return "", "", 0, false
	}
	key, value = kv[:colon], trimSpace(kv[colon+1:])
	if !httpguts.ValidHeaderFieldName(key) || !plainValue([]byte(value)) {
		return "", "", 0, false
	}
	return canonicalKey(key), value, end + 1, true
}
