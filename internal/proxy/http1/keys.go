package http1

import "net/http"

// canonicalKey returns the canonical form of the field name key, a valid
// token. Keys already canonical and the common ones in any case
// ("l5d-ctx-trace", "content-type", which HTTP/2 peers and many clients
// send in lower case) cost no allocation.
func canonicalKey(key string) string {
	if canonical(key) {
		return key
	}
	if len(key) <= 32 {
		var buf [32]byte
		for i := 0; i < len(key); i++ {
			c := key[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		if k, ok := commonKeys[string(buf[:len(key)])]; ok { // no allocation
			return k
		}
	}
	return http.CanonicalHeaderKey(key)
}

// commonKeys maps the lower-case form of frequent field names to their
// canonical form.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"L5d-Dtab", "L5d-Ctx-Dtab", "L5d-Ctx-Trace", "L5d-Ctx-Deadline", "L5d-Sample",
		"L5d-Reqid", "L5d-Dst-Service", "L5d-Dst-Client", "L5d-Dst-Residual",
		"L5d-Success-Class", "L5d-Retryable", "L5d-Err",
		"X-B3-Traceid", "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags", "B3",
		"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control",
		"Connection", "Content-Encoding", "Content-Length", "Content-Type", "Cookie",
		"Date", "Etag", "Host", "Keep-Alive", "Last-Modified", "Location", "Origin",
		"Referer", "Server", "Set-Cookie", "Te", "User-Agent", "Vary", "Via",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id",
	} {
		b := []byte(k)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		m[string(b)] = k
	}
	return m
}()
