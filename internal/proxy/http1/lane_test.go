package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/proxy"
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
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: web\r\n\r\n", false, true, "", ""},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nHost: web\r\nConnection: Keep-Alive\r\n\r\n", false, true, "", ""},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"absolute form", "GET http://web/ HTTP/1.1\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"escaped path", "GET /a%20b HTTP/1.1\r\nHost: web\r\n\r\n", false, false, "", ""},
		{"no Host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", false, false, "", ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false, false, "", ""},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n", false, true, "", ""},
		{"Connection: upgrade", "GET / HTTP/1.1\r\nHost: web\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false, false, "", ""},
		{"Content-Length: 0", "GET / HTTP/1.1\r\nHost: web\r\nContent-Length: 0\r\n\r\n", false, false, "", ""},
		{"Transfer-Encoding", "GET / HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, "", ""},
		{"Expect", "GET / HTTP/1.1\r\nHost: web\r\nExpect: 100-continue\r\n\r\n", false, false, "", ""},
		{"Via, another router's hop", "GET / HTTP/1.1\r\nHost: web\r\nVia: 1.1 linkerd\r\nl5d-dst-service: /svc/web\r\nl5d-dst-client: /$/inet/a/1\r\nl5d-dst-residual: /x\r\nl5d-reqid: 0000000000000001\r\nl5d-ctx-trace: t\r\n\r\n", false, true, "", "t"},
		{"too many Vias", "GET / HTTP/1.1\r\nHost: web\r\nVia: a\r\nVia: b\r\nVia: c\r\nVia: d\r\nVia: e\r\n\r\n", false, false, "", ""},
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
			wantClose := strings.Contains(tc.head, "HTTP/1.0") && !strings.Contains(tc.head, "Keep-Alive") || strings.Contains(tc.head, "Connection: close")
			if ph.close != wantClose {
				t.Errorf("close %v, want %v", ph.close, wantClose)
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

// plainResponse.parse relays exactly the plain successes: a status from
// 200 to 499 but 204 and 304, one Content-Length, no Via, framing or
// protocol fields; hop-by-hop fields and the endpoint's classification
// fields are dropped (every l5d-* one on a clearContext server).
func TestPlainResponseParse(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		clear      bool
		ok         bool
		fields     string
		length     int64
		close      bool
	}{
		{"plain", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n", false, true, "Content-Length: 5|Server: x|", 5, false},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", false, true, "Content-Length: 0|", 0, false},
		{"hop-by-hop dropped, close seen", "HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: t=1\r\nProxy-Authenticate: x\r\nContent-Length: 1\r\n\r\n", false, true, "Content-Length: 1|", 1, true},
		{"classification replaced", "HTTP/1.1 201 Created\r\nl5d-success-class: 0.0\r\nL5d-Retryable: true\r\nl5d-ctx-thing: a\r\nContent-Length: 2\r\n\r\n", false, true, "L5d-Ctx-Thing: a|Content-Length: 2|", 2, false},
		{"clearContext strips l5d-*", "HTTP/1.1 200 OK\r\nl5d-ctx-thing: a\r\nl5d-err: x\r\nContent-Length: 2\r\n\r\n", true, true, "Content-Length: 2|", 2, false},
		{"duplicates kept in order", "HTTP/1.1 200 OK\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nContent-Length: 004\r\n\r\n", false, true, "Set-Cookie: a|Set-Cookie: b|Content-Length: 004|", 4, false},
		{"500", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, false, "", 0, false},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", false, false, "", 0, false},
		{"100", "HTTP/1.1 100 Continue\r\n\r\n", false, false, "", 0, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, false, "", 0, false},
		{"no length", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", false, false, "", 0, false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false, false, "", 0, false},
		{"signed length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", false, false, "", 0, false},
		{"Via", "HTTP/1.1 200 OK\r\nVia: 1.1 x\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
		{"Connection names a field", "HTTP/1.1 200 OK\r\nConnection: foo\r\nFoo: 1\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
		{"Trailer", "HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
		{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
		{"bad status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false, false, "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rr plainResponse
			ok := rr.parse([]byte(tc.head), tc.clear)
			if ok != tc.ok {
				t.Fatalf("parse = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var got strings.Builder
			for _, f := range rr.fields[:rr.nf] {
				got.WriteString(f.k + ": " + f.v + "|")
			}
			if got.String() != tc.fields || rr.length != tc.length || rr.close != tc.close {
				t.Errorf("fields %q length %d close %v; want %q %d %v", got.String(), rr.length, rr.close, tc.fields, tc.length, tc.close)
			}
		})
	}
}

// FuzzPlainResponse: whatever response head the lane relays raw, the full
// stack reads (http.ReadResponse) with the same status and length, and
// answers with the same fields once it has classified it, removed the
// hop-by-hop fields, appended Via and, on a clearContext server, stripped
// l5d-* (Date aside: both keep the endpoint's or add one).
func FuzzPlainResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\n",
		"HTTP/1.1 404\r\nContent-Length: 0\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n",
		"HTTP/1.1 201 Created\r\nl5d-success-class: 0.0\r\nL5d-Retryable: true\r\nl5d-ctx-thing: a\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nKeep-Alive: t=1\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nContent-Length: 004\r\n\r\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, head string, clear bool) {
		// parse is given what peekHead finds: a head up to its blank line.
		end := strings.Index(head, "\r\n\r\n")
		if end < 0 {
			return
		}
		head = head[:end+4]
		var rr plainResponse
		if !rr.parse([]byte(head), clear) {
			return
		}
		req := &http.Request{Method: http.MethodGet}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(head+strings.Repeat("x", int(min(rr.length, 1<<16))))), req)
		if err != nil {
			t.Fatalf("relayed raw, but http.ReadResponse fails: %v", err)
		}
		if resp.StatusCode != rr.status || resp.ContentLength != rr.length {
			t.Fatalf("status %d length %d; the full stack reads %d %d", rr.status, rr.length, resp.StatusCode, resp.ContentLength)
		}
		if resp.Close != rr.close {
			t.Fatalf("close %v; the full stack reads %v", rr.close, resp.Close)
		}
		// The full stack's transformations, on the map.
		h := resp.Header
		h["L5d-Success-Class"] = []string{"1.0"}
		delete(h, "L5d-Retryable")
		proxy.RemoveHopByHop(h)
		proxy.AppendVia(h, 1, 1)
		if clear {
			proxy.StripL5d(h)
		}
		delete(h, "Date")
		var want []string
		for k, vs := range h {
			for _, v := range vs {
				want = append(want, k+": "+v)
			}
		}
		got := []string{"Via: 1.1 linkerd"}
		if !clear {
			got = append(got, "L5d-Success-Class: 1.0")
		}
		for _, fl := range rr.fields[:rr.nf] {
			if fl.k != "Date" {
				got = append(got, fl.k+": "+fl.v)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("head %q (clear %v):\n lane %q\n full %q", head, clear, got, want)
		}
	})
}

// FuzzParsePlain: whatever request head the lane takes, the full stack's
// parser takes too, with the same target and Host, and the fields the
// lane copies are the request's fields but Host, Connection and l5d-*.
func FuzzParsePlain(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: web\r\n\r\n",
		"GET /a?b=c HTTP/1.1\r\nuser-agent: x\r\nHost: web\r\nConnection: keep-alive\r\nAccept: */*\r\nAccept: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nl5d-ctx-trace: abc\r\nl5d-sample: 1\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: web\r\nConnection: keep-alive\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: web\r\nVia: 1.1 linkerd, 1.0 x\r\nl5d-dst-service: /svc/web\r\nl5d-reqid: 1\r\n\r\n",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, head string, clear bool) {
		end := strings.Index(head, "\r\n\r\n")
		if end < 0 {
			return
		}
		head = head[:end+4]
		var ph plainHead
		if !parsePlain(&ph, []byte(head), clear) {
			return
		}
		req, ok := readRequestHead(bufio.NewReader(strings.NewReader(head)), []byte(head))
		if !ok {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				t.Fatalf("the lane takes %q, the full stack refuses it: %v", head, err)
			}
			req = r
		}
		if req.Close != ph.close || (req.ProtoMinor == 0) != ph.http10 {
			t.Fatalf("%q: lane close %v http10 %v, full stack close %v minor %d", head, ph.close, ph.http10, req.Close, req.ProtoMinor)
		}
		if req.Method != http.MethodGet || req.RequestURI != ph.target || req.Host != ph.host {
			t.Fatalf("%q: lane %s %s, full stack %s %s %s", head, ph.target, ph.host, req.Method, req.RequestURI, req.Host)
		}
		if got, want := strings.Join(ph.via[:ph.nvia], ", "), strings.Join(req.Header["Via"], ", "); got != want {
			t.Fatalf("%q: lane Via %q, full stack %q", head, got, want)
		}
		var want []string
		for k, vs := range req.Header {
			if k == "Connection" || k == "Via" || isContextField(k) {
				continue
			}
			for _, v := range vs {
				want = append(want, k+": "+v)
			}
		}
		var got []string
		for _, fl := range ph.fields[:ph.nf] {
			got = append(got, fl.k+": "+fl.v)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("%q:\n lane %q\n full %q", head, got, want)
		}
	})
}
