package http1

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// parsePlain takes exactly the plain heads: anything with a body, a
// protocol switch, hop-by-hop fields other than Connection: keep-alive,
// Via, or context other than a trace goes to the full stack.
func TestParsePlain(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		clear      bool
		ok         bool
		fields     string // the copied fields, as written
		trace      string
	}{
		{"minimal", "GET / HTTP/1.1\r\nHost: web\r\n\r\n", false, true, "", ""},
		{"fields copied in order, Connection dropped", "GET /a?b=c HTTP/1.1\r\nuser-agent: x\r\nHost: web\r\nConnection: keep-alive\r\nAccept: */*\r\nAccept: text/plain\r\nDtab-Local: /a=>/b\r\n\r\n", false, true,
			"User-Agent: x\r\nAccept: */*\r\nAccept: text/plain\r\nDtab-Local: /a=>/b\r\n", ""},
		{"trace joined", "GET / HTTP/1.1\r\nHost: web\r\nl5d-ctx-trace: abc\r\nl5d-sample: 0.5\r\n\r\n", false, true, "", "abc"},
		{"clearContext drops l5d-*", "GET / HTTP/1.1\r\nHost: web\r\nl5d-dtab: /a=>/b\r\nl5d-ctx-trace: abc\r\nL5d-Ctx-Thing: y\r\n\r\n", true, true, "", ""},
		{"l5d-dtab", "GET / HTTP/1.1\r\nHost: web\r\nl5d-dtab: /a=>/b\r\n\r\n", false, false, "", ""},
		{"l5d-ctx-dtab", "GET / HTTP/1.1\r\nHost: web\r\nl5d-ctx-dtab: /a=>/b\r\n\r\n", false, false, "", ""},
		{"l5d-ctx-deadline", "GET / HTTP/1.1\r\nHost: web\r\nl5d-ctx-deadline: 1 2\r\n\r\n", false, false, "", ""},
		{"unknown l5d-ctx", "GET / HTTP/1.1\r\nHost: web\r\nl5d-ctx-thing: 1\r\n\r\n", false, false, "", ""},
		{"two traces", "GET / HTTP/1.1\r\nHost: web\r\nl5d-ctx-trace: a\r\nl5d-ctx-trace: b\r\n\r\n", false, false, "", ""},
		{"POST", "POST / HTTP/1.1\r\nHost: web\r\nContent-Length: 1\r\n\r\n", false, false, "", ""},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"absolute form", "GET http://web/ HTTP/1.1\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"no Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", false, false, "", ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false, false, "", ""},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n", false, false, "", ""},
		{"Connection: upgrade", "GET / HTTP/1.1\r\nHost: web\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false, false, "", ""},
		{"Content-Length: 0", "GET / HTTP/1.1\r\nHost: web\r\nContent-Length: 0\r\n\r\n", false, false, "", ""},
		{"Transfer-Encoding", "GET / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, "", ""},
		{"Expect", "GET / HTTP/1.1\r\nHost: web\r\nExpect: 100-continue\r\n\r\n", false, false, "", ""},
		{"Via", "GET / HTTP/1.1\r\nHost: web\r\nVia: 1.1 linkerd\r\n\r\n", false, false, "", ""},
		{"TE", "GET / HTTP/1.1\r\nHost: web\r\nTE: trailers\r\n\r\n", false, false, "", ""},
		{"Keep-Alive", "GET / HTTP/1.1\r\nHost: web\r\nKeep-Alive: 5\r\n\r\n", false, false, "", ""},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: web\r\nX: a\r\n b\r\n\r\n", false, false, "", ""},
		{"bad field name", "GET / HTTP/1.1\r\nHost: web\r\nX Y: a\r\n\r\n", false, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ph plainHead
			ok := parsePlain(&ph, []byte(tc.head), tc.clear)
			if ok != tc.ok {
				t.Fatalf("parsePlain = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var b bytes.Buffer
			bw := bufio.NewWriter(&b)
			ph.writeFields(bw)
			bw.Flush()
			if b.String() != tc.fields {
				t.Errorf("fields %q, want %q", b.String(), tc.fields)
			}
			if ph.ctxTrace != tc.trace {
				t.Errorf("trace %q, want %q", ph.ctxTrace, tc.trace)
			}
			if ph.host != "web" {
				t.Errorf("host %q", ph.host)
			}
		})
	}
	var ph plainHead
	many := "GET / HTTP/1.1\r\nHost: web\r\n" + strings.Repeat("X-A: 1\r\n", maxPlainFields+1) + "\r\n"
	if parsePlain(&ph, []byte(many), false) {
		t.Error("more fields than a plain head holds were taken")
	}
}

// The lane's head parsing allocates one string per request and nothing
// else.
func TestParsePlainAllocs(t *testing.T) {
	head := []byte("GET /x HTTP/1.1\r\nHost: web\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
	var ph plainHead
	if n := testing.AllocsPerRun(100, func() { parsePlain(&ph, head, false) }); n > 1 {
		t.Fatalf("%v allocations per head, want at most 1", n)
	}
}
