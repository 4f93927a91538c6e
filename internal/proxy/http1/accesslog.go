package http1

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// AccessLog writes one line per request in Linkerd's httpAccessLog format,
// the Apache combined format with the request's Host as the first field:
//
//	hello - - [25/Nov/2026:18:52:36 +0000] "GET /path HTTP/1.1" 200 42 "-" "curl/8.0"
type AccessLog struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

// OpenAccessLog opens (appending unless appendTo is false) the log file.
func OpenAccessLog(path string, appendTo bool) (*AccessLog, error) {
	flags := os.O_CREATE | os.O_WRONLY
	if appendTo {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("httpAccessLog: %w", err)
	}
	return &AccessLog{w: f, c: f}, nil
}

// NewAccessLog writes to w (for tests and stdout logging).
func NewAccessLog(w io.Writer) *AccessLog { return &AccessLog{w: w} }

// Close closes the file.
func (l *AccessLog) Close() error {
	if l == nil || l.c == nil {
		return nil
	}
	return l.c.Close()
}

// Log records one request.
func (l *AccessLog) Log(r *http.Request, status int, bytes int64, at time.Time) {
	b := make([]byte, 0, 256)
	b = append(b, dash(r.Host)...)
	b = append(b, " - - ["...)
	b = at.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(b, r.Method...)
	b = append(b, ' ')
	b = append(b, r.RequestURI...)
	b = append(b, ' ')
	b = append(b, r.Proto...)
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, bytes, 10)
	b = append(b, " \""...)
	b = append(b, dash(r.Header.Get("Referer"))...)
	b = append(b, "\" \""...)
	b = append(b, dash(r.Header.Get("User-Agent"))...)
	b = append(b, "\"\n"...)
	l.mu.Lock()
	_, _ = l.w.Write(b)
	l.mu.Unlock()
}

// dash is s with quotes and control characters escaped, or "-" if empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
