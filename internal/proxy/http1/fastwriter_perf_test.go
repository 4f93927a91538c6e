package http1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFastWriterReuseClearsHeaders: the per-connection writer is reused,
// and nothing of one response's header leaks into the next.
func TestFastWriterReuseClearsHeaders(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(w.Header()) != 0 {
			t.Errorf("%s: handler got a header with %v", r.URL.Path, w.Header())
		}
		if r.URL.Path == "/first" {
			w.Header().Set("X-First", "1")
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "first")
			return
		}
		io.WriteString(w, "second") // chunked: no length of its own
	}))
	c, br := rawConn(t, addr)
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []string{"first", "second"} {
		req, _ := http.NewRequest("GET", "/", nil)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("response %d: body %q, want %q", i, b, want)
		}
		if i == 1 && (resp.Header.Get("X-First") != "" || resp.ContentLength != -1) {
			t.Errorf("second response inherited the first's header: %v (length %d)", resp.Header, resp.ContentLength)
		}
	}
}

// writeCannedResponse is a typical proxied response through a reused
// fastWriter.
func writeCannedResponse(w *fastWriter, bw *bufio.Writer, req *http.Request, vs [4][]string, body []byte) {
	w.reset(bw, req)
	h := w.Header()
	h["Content-Type"] = vs[0]
	h["Content-Length"] = vs[1]
	h["Server"] = vs[2]
	h["Via"] = vs[3]
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	w.finish()
}

// TestFastWriterAllocs holds the response writer of the fast path to zero
// allocations per response once a connection's writer exists.
func TestFastWriterAllocs(t *testing.T) {
	req, _ := http.NewRequest("GET", "http://b/", nil)
	req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/1.1", 1, 1
	bw := bufio.NewWriterSize(io.Discard, 4<<10)
	w := &fastWriter{h: make(http.Header, 8)}
	vs := [4][]string{{"text/plain"}, {"39"}, {"nginx"}, {"1.1 linnet"}}
	body := []byte("Hello (127.0.0.1) world (127.0.0.1)!!\n")
	if n := testing.AllocsPerRun(200, func() { writeCannedResponse(w, bw, req, vs, body) }); n != 0 {
		t.Errorf("%v allocations per response, want 0", n)
	}
}

func BenchmarkFastWriterResponse(b *testing.B) {
	req, _ := http.NewRequest("GET", "http://b/", nil)
	bw := bufio.NewWriterSize(io.Discard, 4<<10)
	w := &fastWriter{h: make(http.Header, 8)}
	vs := [4][]string{{"text/plain"}, {"39"}, {"nginx"}, {"1.1 linnet"}}
	body := []byte("Hello (127.0.0.1) world (127.0.0.1)!!\n")
	b.ReportAllocs()
	for b.Loop() {
		writeCannedResponse(w, bw, req, vs, body)
	}
}

func TestWriteUint(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		base uint64
		want string
	}{{0, 10, "0"}, {7, 10, "7"}, {200, 10, "200"}, {999, 10, "999"}, {1000, 10, "1000"},
		{0, 16, "0"}, {15, 16, "f"}, {16, 16, "10"}, {32768, 16, "8000"}, {1<<64 - 1, 16, "ffffffffffffffff"}, {1<<64 - 1, 10, "18446744073709551615"}} {
		var sb strings.Builder
		bw := bufio.NewWriter(&sb)
		writeUint(bw, c.n, c.base)
		bw.Flush()
		if sb.String() != c.want {
			t.Errorf("writeUint(%d, %d) = %q, want %q", c.n, c.base, sb.String(), c.want)
		}
	}
}

// The proxy hands the fast writer the endpoint's header map instead of
// copying it: it is written as it is, left alone by the next request's
// reset, and refused once the writer's own header has anything in it.
func TestFastWriterAdoptHeader(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	w := &fastWriter{h: make(http.Header, 8)}
	req := httptest.NewRequest("GET", "/", nil)
	w.reset(bw, req)
	h := http.Header{"X-A": {"1"}, "Content-Length": {"2"}}
	if !w.adoptHeader(h) {
		t.Fatal("adoptHeader refused a fresh writer")
	}
	w.WriteHeader(200)
	w.Write([]byte("ok"))
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	if s := buf.String(); !strings.Contains(s, "\r\nX-A: 1\r\n") || !strings.HasSuffix(s, "\r\n\r\nok") {
		t.Fatalf("response %q lacks the adopted header or body", s)
	}
	w.reset(bw, req)
	if len(w.Header()) != 0 {
		t.Errorf("next request starts with header %v", w.Header())
	}
	if len(h) != 2 {
		t.Errorf("reset changed the adopted map: %v", h)
	}
	w.Header().Set("X-B", "2")
	if w.adoptHeader(http.Header{"X-C": {"3"}}) {
		t.Error("adoptHeader replaced a header that was already set")
	}
}
