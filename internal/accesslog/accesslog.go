// Package accesslog writes one line per HTTP request, in the format of
// Linkerd 1's httpAccessLog / h2AccessLog (its AccessLogger: the Apache
// combined format with a numeric month, stamped when the response is
// complete):
//
//	127.0.0.1 - - [25/11/2026:18:04:35 +0000] "GET /greet HTTP/1.1" 200 12 "-" "curl/8.5.0"
//
// The size is the response's Content-Length, or the bytes written when it
// had none ("-" for an empty body). Quotes, backslashes and control
// characters in the fields are written as \xNN so a line always splits
// into the same fields.
// to a file that can be rolled by time or size (File, RollPolicy).
package accesslog

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Middleware returns a wrapper that logs every request served by the
// wrapped handler to w, after the response is complete. Writes to w are
// serialised; a write error is dropped (the request is not affected).
func Middleware(w io.Writer) func(http.Handler) http.Handler {
	l := &logger{w: w, now: time.Now}
	return l.wrap
}

type logger struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
	buf []byte
}

func (l *logger) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recorder{ResponseWriter: w}
		defer func() {
			if rw.status == 0 {
				rw.status = http.StatusOK
			}
			n := rw.bytes
			if v := w.Header().Get("Content-Length"); v != "" {
				if cl, err := strconv.ParseInt(v, 10, 64); err == nil {
					n = cl
				}
			}
			l.log(r, rw.status, n)
		}()
		next.ServeHTTP(rw, r)
	})
}

func (l *logger) log(r *http.Request, status int, n int64) {
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf[:0]
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	b = appendField(b, host)
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/01/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = appendQuoted(b, strings.ToUpper(r.Method))
	b = append(b, ' ')
	b = appendQuoted(b, r.RequestURI)
	b = append(b, ' ')
	b = appendQuoted(b, r.Proto)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if n > 0 {
		b = strconv.AppendInt(b, n, 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, " \""...)
	b = appendQuoted(b, orDash(r.Referer()))
	b = append(b, "\" \""...)
	b = appendQuoted(b, orDash(r.UserAgent()))
	b = append(b, "\"\n"...)
	l.buf = b
	_, _ = l.w.Write(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// appendField appends s, or "-" when empty, with spaces and control
// characters escaped so that a line always splits into the same fields.
func appendField(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '\\' || c == 0x7f {
			b = appendEscape(b, c)
		} else {
			b = append(b, c)
		}
	}
	return b
}

// appendQuoted appends s for use between double quotes.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == '"' || c == '\\' || c == 0x7f {
			b = appendEscape(b, c)
		} else {
			b = append(b, c)
		}
	}
	return b
}

func appendEscape(b []byte, c byte) []byte {
	const hex = "0123456789abcdef"
	return append(b, '\\', 'x', hex[c>>4], hex[c&15])
}

// recorder captures the status and body size of a response; Flush,
// Hijack and Unwrap keep streaming, upgrades and ResponseController
// working through it.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
