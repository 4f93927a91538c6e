package http1

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// respCase is a response as an endpoint sends it, with what follows it on
// the connection (a pipelined next response, or nothing).
type respCase struct {
	name, method, wire string
	fast               bool // whether readResponseHead should take it
}

var respCases = []respCase{
	{"plain", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nServer: nginx\r\n\r\nhelloNEXT", true},
	{"empty body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nNEXT", true},
	{"no reason", "GET", "HTTP/1.1 404\r\nContent-Length: 2\r\n\r\nnoNEXT", true},
	{"long reason", "POST", "HTTP/1.1 503 Service Unavailable Now\r\nContent-Length: 1\r\nl5d-retryable: true\r\n\r\nx", true},
	{"lower-case and odd keys", "GET", "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-FOO-bar: a\r\nx-foo-BAR: b\r\nWww-Authenticate: c\r\n\r\nabc", true},
	{"duplicates and spacing", "GET", "HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nSet-Cookie:b=2 \r\nVia:\t1.1 x\t\r\nEmpty:\r\nContent-Length: 004\r\n\r\nabcd", true},
	{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true},
	{"connection keep-alive", "GET", "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", true},
	{"obs-text value", "GET", "HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", true},
	{"short body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true},

	{"head request", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false},
	{"connect", "CONNECT", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
	{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
	{"no length", "GET", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end", false},
	{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", false},
	{"304", "GET", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
	{"100", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"two lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false},
	{"conflicting lengths", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false},
	{"signed length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false},
	{"empty length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok", false},
	{"pragma", "GET", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", false},
	{"trailer", "GET", "HTTP/1.1 200 OK\r\nTrailer: X\r\nContent-Length: 0\r\n\r\n", false},
	{"connection upgrade", "GET", "HTTP/1.1 200 OK\r\nConnection: upgrade\r\nContent-Length: 0\r\n\r\n", false},
	{"obs-fold", "GET", "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n", false},
	{"bare LF", "GET", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", false},
	{"space in name", "GET", "HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n", false},
	{"control byte", "GET", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n", false},
	{"no colon", "GET", "HTTP/1.1 200 OK\r\nX-A\r\nContent-Length: 0\r\n\r\n", false},
	{"bad status", "GET", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"truncated head", "GET", "HTTP/1.1 200 OK\r\nContent-Len", false},
	{"huge head", "GET", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\nContent-Length: 0\r\n\r\n", false},
}

// TestReadResponseHeadMatchesReadResponse reads each response with
// readResponseHead and with http.ReadResponse, from its own reader: what
// readResponseHead takes must come out the same (status, header, length,
// close, body, the error at its end, and what is left on the
// connection); what it declines must leave the reader untouched.
func TestReadResponseHeadMatchesReadResponse(t *testing.T) {
	for _, tc := range respCases {
		t.Run(tc.name, func(t *testing.T) {
			if took := compareResponseHead(t, tc.method, tc.wire); took != tc.fast {
				t.Fatalf("readResponseHead took it: %v, want %v", took, tc.fast)
			}
		})
	}
}

// FuzzReadResponseHead feeds endpoint bytes (the proxy's least trusted
// input after the caller's) to readResponseHead and http.ReadResponse:
// whatever the fast path takes must read exactly as net/http reads it,
// and whatever it declines must be left unread.
func FuzzReadResponseHead(f *testing.F) {
	for _, tc := range respCases {
		f.Add(tc.method == http.MethodHead, tc.wire)
	}
	f.Fuzz(func(t *testing.T, head bool, wire string) {
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		compareResponseHead(t, method, wire)
	})
}

// compareResponseHead reads wire with readResponseHead and, from its own
// reader, with http.ReadResponse, and reports whether the fast path took
// it. What it takes must come out the same (status, header, length,
// close, body, the error at its end, and what is left on the connection);
// what it declines must leave the reader untouched.
func compareResponseHead(t *testing.T, method, wire string) (took bool) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://e/", nil)
	fbr := bufio.NewReaderSize(strings.NewReader(wire), 4<<10)
	got, ok := readResponseHead(fbr, req)
	if !ok {
		if fbr.Buffered() > 0 {
			if b, _ := fbr.Peek(fbr.Buffered()); !strings.HasPrefix(wire, string(b)) {
				t.Fatalf("declined, but consumed input: %q left", b)
			}
		}
		return false
	}
	want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(wire)), req)
	if err != nil {
		t.Fatalf("http.ReadResponse: %v (the fast path accepted what net/http refuses)", err)
	}
	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
		got.ContentLength != want.ContentLength || got.Close != want.Close || got.Request != want.Request ||
		!reflect.DeepEqual(got.TransferEncoding, want.TransferEncoding) || !reflect.DeepEqual(got.Trailer, want.Trailer) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Errorf("header\n got  %q\n want %q", got.Header, want.Header)
	}
	if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Errorf("body is NoBody: %v, want %v", got.Body == http.NoBody, want.Body == http.NoBody)
	}
	gb, gerr := io.ReadAll(got.Body)
	wb, werr := io.ReadAll(want.Body)
	if string(gb) != string(wb) || gerr != werr {
		t.Errorf("body %q, %v; want %q, %v", gb, gerr, wb, werr)
	}
	rest, _ := io.ReadAll(fbr)
	if werr == nil && wire[len(wire)-len(rest):] != string(rest) {
		t.Errorf("left on the connection: %q", rest)
	}
	return true
}

// TestReadResponseHeadBodyEOF checks that the last bytes of a body come
// with io.EOF, which returns the connection to the pool without another
// read.
func TestReadResponseHeadBodyEOF(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://e/", nil)
	br := bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1"))
	resp, ok := readResponseHead(br, req)
	if !ok {
		t.Fatal("declined a plain response")
	}
	p := make([]byte, 64)
	n, err := resp.Body.Read(p)
	if n != 5 || err != io.EOF || string(p[:n]) != "hello" {
		t.Fatalf("Read = %d %q, %v; want 5 \"hello\", io.EOF", n, p[:n], err)
	}
}

func TestReadResponseHeadAllocs(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://e/", nil)
	wire := "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 19:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
	rd := strings.NewReader(wire)
	br := bufio.NewReaderSize(rd, 4<<10)
	// The head string, the header map (two), the value slice, the
	// response and its body; http.ReadResponse makes about 13.
	n := testing.AllocsPerRun(200, func() {
		rd.Reset(wire)
		br.Reset(rd)
		if _, ok := readResponseHead(br, req); !ok {
			t.Fatal("declined")
		}
	})
	if n > 6 {
		t.Errorf("%v allocations per response head, want at most 6", n)
	}
}

func BenchmarkReadResponseHead(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://e/", nil)
	wire := "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 19:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
	rd := strings.NewReader(wire)
	br := bufio.NewReaderSize(rd, 4<<10)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(wire)
			br.Reset(rd)
			readResponseHead(br, req)
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(wire)
			br.Reset(rd)
			http.ReadResponse(br, req)
		}
	})
}
