package admin

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseGrace(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"10.seconds":          10 * time.Second,
		"1.second":            time.Second,
		"1.minute+30.seconds": 90 * time.Second,
		"2.minutes-30.second": 90 * time.Second,
		"500.milliseconds":    500 * time.Millisecond,
		"0.seconds":           0,
		"10s":                 10 * time.Second,
		"1m30s":               90 * time.Second,
		"0":                   0,
		"5.SECONDS":           5 * time.Second,
	} {
		got, err := parseGrace(in)
		if err != nil || got != want {
			t.Errorf("parseGrace(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "10", "10.fortnights", "-5s", "1.second-2.seconds", "1.5.seconds", "10.seconds+", "99999999999999999.days"} {
		if d, err := parseGrace(in); err == nil || !strings.Contains(err.Error(), "could not parse 'grace' parameter") {
			t.Errorf("parseGrace(%q) = %v, %v; want an error", in, d, err)
		}
	}
}

// TestShutdownGrace: a grace parameter reaches ShutdownGrace; without one,
// Shutdown is called; a bad one is refused with 400 and stops nothing.
func TestShutdownGrace(t *testing.T) {
	t.Parallel()
	start := func() (*httptest.Server, chan time.Duration) {
		got := make(chan time.Duration, 2)
		srv := httptest.NewServer(New(Params{
			Shutdown:      func() { got <- -1 },
			ShutdownGrace: func(d time.Duration) { got <- d },
		}))
		t.Cleanup(srv.Close)
		return srv, got
	}
	wait := func(got chan time.Duration) time.Duration {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(5 * time.Second):
			t.Fatal("no shutdown")
			return 0
		}
	}

	srv, got := start()
	if code, body := fetch(t, "POST", srv.URL+"/admin/shutdown?grace=bogus", "", ""); code != 400 || !strings.Contains(body, `"bogus" is not a valid duration`) {
		t.Errorf("bad grace: %d %q; want 400 naming the value", code, body)
	}
	if code, body := fetch(t, "POST", srv.URL+"/admin/shutdown?grace=3.seconds", "", ""); code != 200 || body != "quitting\n" {
		t.Errorf("POST grace=3.seconds: %d %q", code, body)
	}
	if d := wait(got); d != 3*time.Second {
		t.Errorf("ShutdownGrace got %v; want 3s", d)
	}
	select {
	case d := <-got:
		t.Errorf("a second shutdown call (%v): the refused request must not have stopped anything", d)
	case <-time.After(50 * time.Millisecond):
	}

	srv, got = start()
	if code, _ := fetch(t, "POST", srv.URL+"/admin/shutdown", "", ""); code != 200 {
		t.Errorf("POST without grace: %d", code)
	}
	if d := wait(got); d != -1 {
		t.Errorf("without grace, ShutdownGrace(%v) was called; want Shutdown", d)
	}
}

// TestLoggingMounted: /logging and /logging.json are served when LogLevel
// is set (and listed in /admin), and change that LevelVar.
func TestLoggingMounted(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(New(Params{}))
	t.Cleanup(srv.Close)
	if code, _ := fetch(t, "GET", srv.URL+"/logging.json", "", ""); code != 404 {
		t.Errorf("without LogLevel, /logging.json = %d; want 404", code)
	}
	lv := new(slog.LevelVar)
	srv = httptest.NewServer(New(Params{LogLevel: lv}))
	t.Cleanup(srv.Close)
	if code, body := fetch(t, "GET", srv.URL+"/logging.json", "", ""); code != 200 || strings.TrimSpace(body) != `[{"logger":"root","level":"INFO"}]` {
		t.Errorf("GET /logging.json = %d %q", code, body)
	}
	if code, _ := fetch(t, "POST", srv.URL+"/logging.json", "application/x-www-form-urlencoded", "logger=root&level=ERROR"); code != 200 || lv.Level() != slog.LevelError {
		t.Errorf("POST /logging.json = %d, level %v; want 200 and ERROR", code, lv.Level())
	}
	if code, body := fetch(t, "GET", srv.URL+"/logging", "", ""); code != 200 || !strings.Contains(body, `"level":"ERROR"`) {
		t.Errorf("GET /logging = %d %q", code, body)
	}
	if _, body := fetch(t, "GET", srv.URL+"/admin", "", ""); !strings.Contains(body, "/logging\n") || !strings.Contains(body, "/logging.json\n") {
		t.Errorf("/admin does not list the logging paths:\n%s", body)
	}
}
