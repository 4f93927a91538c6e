package accesslog

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLineFormat(t *testing.T) {
	var buf bytes.Buffer
	l := &logger{w: &buf, now: func() time.Time { return time.Date(2026, 11, 25, 18, 4, 35, 0, time.UTC) }}
	h := l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "hello world!")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/greet?x=1", nil)
	req.Host = "hello"
	req.Header.Set("User-Agent", `curl/8 "quoted"`)
	req.Header.Set("Referer", "http://ref/")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", srv.URL+"/missing", strings.NewReader("x"))
	req.Header.Set("User-Agent", "")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv.Close() // handlers have returned: both lines are written
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want0 := `127.0.0.1 - - [25/11/2026:18:04:35 +0000] "GET /greet?x=1 HTTP/1.1" 200 12 "http://ref/" "curl/8 \x22quoted\x22"`
	if len(lines) != 2 || lines[0] != want0 {
		t.Fatalf("got\n%s\nwant first line\n%s", buf.String(), want0)
	}
	re := regexp.MustCompile(`^127\.0\.0\.1 - - \[\d\d/\d\d/\d{4}:[^]]+\] "POST /missing HTTP/1\.1" 404 19 "-" "-"$`)
	if !re.MatchString(lines[1]) {
		t.Fatalf("second line %q", lines[1])
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	h := Middleware(&buf)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "192.0.2.1 - - [") || !strings.HasSuffix(l, `"GET /x HTTP/1.1" 200 - "-" "-"`) {
			t.Fatalf("torn line %q", l)
		}
	}
}

func TestParseRollPolicy(t *testing.T) {
	for _, ok := range []string{"", "never", "hourly", "daily", "weekly(0)", "weekly(6)", "10.megabytes", "100.bytes", "1.gigabyte", "5MB", "1.5 megabytes", "4096", "10mb"} {
		if _, err := ParseRollPolicy(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"weekly(7)", "monthly", "0.bytes", "ten.megabytes", "5 parsecs"} {
		if _, err := ParseRollPolicy(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestRollPolicySizes(t *testing.T) {
	for in, want := range map[string]int64{"10.megabytes": 10 << 20, "1.5 kb": 1536, "4096": 4096, "2GB": 2 << 30} {
		p, err := ParseRollPolicy(in)
		if err != nil || p.size != want {
			t.Errorf("%q: size %d (%v), want %d", in, p.size, err, want)
		}
	}
}

func TestFileRollsBySizeAndPrunes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	pol, _ := ParseRollPolicy("100.bytes")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := OpenFile(path, FileOptions{Policy: pol, Append: true, RotateCount: 2, Now: func() time.Time { now = now.Add(time.Second); return now }})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 39) + "\n")
	for range 10 { // 400 bytes: 2 lines per file
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	rolled, _ := filepath.Glob(path + ".*")
	if len(rolled) != 2 {
		t.Fatalf("kept %d rolled files, want 2: %v", len(rolled), rolled)
	}
	cur, _ := os.ReadFile(path)
	if len(cur) != 80 {
		t.Fatalf("current file %d bytes", len(cur))
	}
	// Reopening with append keeps the content; without, truncates.
	f, _ = OpenFile(path, FileOptions{Append: true, RotateCount: -1})
	f.Write(line)
	f.Close()
	if cur, _ := os.ReadFile(path); len(cur) != 120 {
		t.Fatalf("append: %d bytes", len(cur))
	}
	f, _ = OpenFile(path, FileOptions{Append: false, RotateCount: -1})
	f.Close()
	if cur, _ := os.ReadFile(path); len(cur) != 0 {
		t.Fatalf("truncate: %d bytes", len(cur))
	}
}

func TestFileRollsHourly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	pol, _ := ParseRollPolicy("hourly")
	now := time.Date(2026, 1, 1, 10, 59, 0, 0, time.UTC)
	f, err := OpenFile(path, FileOptions{Policy: pol, Append: true, RotateCount: -1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("a\n"))
	now = now.Add(30 * time.Second)
	f.Write([]byte("b\n"))
	now = now.Add(time.Minute) // 11:00:30: a new hour
	f.Write([]byte("c\n"))
	old, err := os.ReadFile(path + ".20260101-110030")
	if err != nil || string(old) != "a\nb\n" {
		t.Fatalf("rolled file: %q %v", old, err)
	}
	if cur, _ := os.ReadFile(path); string(cur) != "c\n" {
		t.Fatalf("current: %q", cur)
	}
	wk, _ := ParseRollPolicy("weekly(1)")
	if got := wk.periodStart(time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("weekly(1) period of Wed 25 Nov starts %v", got)
	}
}

func BenchmarkMiddleware(b *testing.B) {
	h := Middleware(io.Discard)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest("GET", "/x", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for range b.N {
		h.ServeHTTP(w, req)
	}
}

func TestOpenWithMiddleware(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := Open(path, "daily", true, -1)
	if err != nil {
		t.Fatal(err)
	}
	h := Middleware(f)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("DELETE", "/thing", nil))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"DELETE /thing HTTP/1.1" 204 -`) {
		t.Fatalf("log: %q", b)
	}
	if _, err := Open(path, "fortnightly", true, -1); err == nil {
		t.Fatal("bad policy accepted")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "a.log"), "", true, -1); err == nil {
		t.Fatal("unwritable path accepted")
	}
}
