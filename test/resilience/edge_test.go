package resilience

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A request whose l5d-ctx-deadline has already passed gets the timeout
// answer (503 with l5d-err) without reaching a backend; one still in time
// is forwarded with its deadline.
func TestPastDeadlineNeverReachesBackend(t *testing.T) {
	t.Parallel()
	seen := make(chan string, 1)
	be := newBackend(t, "be", func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.Header.Get("l5d-ctx-deadline"):
		default:
		}
		io.WriteString(w, "ok")
	})
	dir := fsDir(t, map[string]string{"web": be.fsLine()})
	admin, port := freePort(t), freePort(t)
	rt := start(t, "router", fsRouter(admin, port, dir, ""), admin)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	do := func(deadline string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "web"
		req.Header.Set("l5d-ctx-deadline", deadline)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	now := time.Now().UnixNano()

	const n = 20
	var past []string
	for i := range n {
		// Half already past by a second, half by a nanosecond.
		ago := int64(time.Second)
		if i%2 == 1 {
			ago = 1
		}
		resp, body := do(fmt.Sprintf("%d %d", now-2*int64(time.Second), time.Now().UnixNano()-ago))
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("l5d-err") == "" {
			t.Errorf("past deadline: %d l5d-err=%q %q; want 503 with l5d-err", resp.StatusCode, resp.Header.Get("l5d-err"), body)
		}
		past = append(past, body)
	}
	if hits := be.hits.Load(); hits != 0 {
		t.Errorf("requests with a past deadline reached the backend %d times; want 0", hits)
	}

	future := fmt.Sprintf("%d %d", now, now+int64(time.Minute))
	resp, body := do(future)
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("deadline in a minute: %d %q; want 200 ok", resp.StatusCode, body)
	}
	if got := <-seen; got != future {
		t.Errorf("backend saw l5d-ctx-deadline %q; want %q", got, future)
	}
	m := rt.metrics(t)
	t.Logf("past-deadline requests %d → 503 (e.g. %q), backend hits for them %d; server status/503 = %g, service failures = %g; in-time request forwarded with its deadline",
		n, past[0], be.hits.Load()-1, sum(m, "status/503", "rt/web/server/"), m["rt/web/service/svc/web/failures"])
	if got := sum(m, "status/503", "rt/web/server/"); got != n {
		t.Errorf("server status/503 = %g; want %d", got, n)
	}
}

// rawRequest dials the router.
func rawDial(t *testing.T, port int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Slowloris callers (headers trickled a byte at a time, or nothing sent
// at all) are cut off after the read-header timeout with 408 (or a
// silent close); oversized headers get 431; a header between the fast
// path's buffer and the limit is served. Meanwhile ordinary requests are
// answered promptly.
func TestHostileHeaders(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "be", nil)
	dir := fsDir(t, map[string]string{"web": be.fsLine()})
	admin, port := freePort(t), freePort(t)
	start(t, "router", fsRouter(admin, port, dir, ""), admin)
	const headerTimeout = 10 * time.Second // http1.DefaultReadHeaderTimeout

	// Oversized headers: maxHeadersKB 8 + maxInitialLineKB 4 (net/http
	// allows 4 KiB more). 6 KiB passes the fast path's 4 KiB buffer and is
	// served by net/http; 32 KiB is refused.
	for _, tc := range []struct{ size, want int }{{6 << 10, 200}, {32 << 10, 431}} {
		c := rawDial(t, port)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: web\r\nX-Big: %s\r\n\r\n", strings.Repeat("x", tc.size))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("%d-byte header: %v", tc.size, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d-byte header: status %d; want %d", tc.size, resp.StatusCode, tc.want)
		}
		t.Logf("%d-byte header → %d", tc.size, resp.StatusCode)
	}

	// Slowloris: ten trickling connections and ten silent ones.
	const slow = 10
	type cut struct {
		got  string
		took time.Duration
		err  error
	}
	cuts := make(chan cut, 2*slow)
	var trickled atomic.Int64
	t0 := time.Now()
	for i := range 2 * slow {
		c := rawDial(t, port)
		c.SetDeadline(time.Now().Add(headerTimeout + 8*time.Second))
		if i < slow {
			go func() {
				msg := "GET / HTTP/1.1\r\nHost: web\r\nX-Slow: " + strings.Repeat("s", 4000)
				for j := range len(msg) {
					if _, err := c.Write([]byte{msg[j]}); err != nil {
						return
					}
					trickled.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
		go func() {
			b, err := io.ReadAll(c)
			cuts <- cut{string(b), time.Since(t0), err}
		}()
	}

	// Ordinary requests keep being served meanwhile.
	l := newLoad(port, "web", 4)
	var worst time.Duration
	for time.Since(t0) < headerTimeout-time.Second {
		s := time.Now()
		l.run(20, 4)
		worst = max(worst, time.Since(s))
		time.Sleep(100 * time.Millisecond)
	}
	l.requireNoFailures(t)

	var with408, silent int
	var last time.Duration
	for range 2 * slow {
		c := <-cuts
		last = max(last, c.took)
		switch {
		case c.err != nil:
			t.Errorf("slow connection not closed by the router: %v (got %q)", c.err, c.got)
		case strings.HasPrefix(c.got, "HTTP/1.1 408 "):
			with408++
		case c.got == "":
			silent++
		default:
			t.Errorf("slow connection got %q; want 408 or a silent close", c.got)
		}
		if c.took < headerTimeout-time.Second {
			t.Errorf("slow connection cut after %v; want about the %v header timeout", c.took, headerTimeout)
		}
	}
	t.Logf("slowloris: %d trickling connections cut with 408, %d silent ones closed, all within %v (timeout %v, %d bytes trickled); "+
		"meanwhile %d ordinary requests, %d failures, slowest batch of 20 took %v",
		with408, silent, last.Round(time.Millisecond), headerTimeout, trickled.Load(), l.sent.Load(), len(l.failed()), worst.Round(time.Millisecond))
	if with408 != slow || silent != slow {
		t.Errorf("%d of %d trickling connections got 408 and %d of %d silent ones were closed silently", with408, slow, silent, slow)
	}
	if worst > 2*time.Second {
		t.Errorf("ordinary requests slowed to %v per batch while slowloris connections were open", worst)
	}
}
