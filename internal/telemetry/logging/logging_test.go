package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"DEBUG": slog.LevelDebug, "info": slog.LevelInfo, "WARNING": slog.LevelWarn, "warn": slog.LevelWarn,
		"ERROR": slog.LevelError, "TRACE": LevelTrace, "ALL": LevelTrace, "FATAL": LevelCritical, "OFF": LevelOff,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	if _, err := ParseLevel("LOUD"); err == nil || !strings.Contains(err.Error(), `"LOUD"`) {
		t.Errorf("LOUD: %v", err)
	}
}

func TestLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	log := New(&buf, Options{Level: lv})
	log.Info("hidden")
	log.Warn("shown", "k", "v")
	log.Log(context.Background(), LevelCritical, "bad")
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "level=WARN msg=shown k=v") || !strings.Contains(out, "level=CRITICAL msg=bad") {
		t.Fatalf("output:\n%s", out)
	}
	buf.Reset()
	New(&buf, Options{JSON: true}).Info("x")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "x" || m["level"] != "INFO" {
		t.Fatalf("json: %s %v", buf.String(), err)
	}
}

func TestHandler(t *testing.T) {
	lv := new(slog.LevelVar)
	srv := httptest.NewServer(Handler(lv))
	defer srv.Close()
	levels := func(resp *http.Response) []LoggerLevel {
		t.Helper()
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var l []LoggerLevel
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := levels(resp); len(got) != 1 || got[0] != (LoggerLevel{"root", "INFO"}) {
		t.Fatalf("GET: %+v; want [{root INFO}]", got)
	}
	resp, err = http.PostForm(srv.URL, url.Values{"logger": {"root"}, "level": {"debug"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := levels(resp); lv.Level() != slog.LevelDebug || got[0].Level != "DEBUG" {
		t.Fatalf("level %v, reply %+v", lv.Level(), got)
	}
	// Without logger= (the root logger is meant), level in the query.
	resp, err = http.Post(srv.URL+"?level=TRACE", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := levels(resp); lv.Level() != LevelTrace || got[0].Level != "TRACE" {
		t.Fatalf("level %v, reply %+v", lv.Level(), got)
	}
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"level": {"nope"}}, `"nope"`},
		{url.Values{"logger": {"com.twitter"}, "level": {"INFO"}}, `"com.twitter"`},
		{url.Values{"logger": {"root"}}, "missing parameter level"},
	} {
		resp, err = http.PostForm(srv.URL, bad.form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), bad.want) || lv.Level() != LevelTrace {
			t.Errorf("%v: %d %q, level now %v; want 400 naming %s, level unchanged", bad.form, resp.StatusCode, body, lv.Level(), bad.want)
		}
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("DELETE: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestPageHandler(t *testing.T) {
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	srv := httptest.NewServer(PageHandler(lv))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	const open = `<script id="logger-data" type="application/json">`
	i := strings.Index(page, open)
	if i < 0 {
		t.Fatalf("no logger-data script:\n%s", page)
	}
	data := page[i+len(open):]
	data = data[:strings.Index(data, "</script>")]
	var l []LoggerLevel
	if err := json.Unmarshal([]byte(data), &l); err != nil || len(l) != 1 || l[0] != (LoggerLevel{"root", "WARNING"}) {
		t.Fatalf("logger-data %q: %+v %v", data, l, err)
	}
	if !strings.Contains(page, `<option selected>WARNING</option>`) || !strings.Contains(page, `action="logging.json"`) {
		t.Errorf("the form does not show the current level or does not post to logging.json:\n%s", page)
	}
}

func TestLevelFlag(t *testing.T) {
	lv := new(slog.LevelVar)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(LevelFlag{Var: lv}, "log.level", "")
	if err := fs.Parse([]string{"-log.level=DEBUG"}); err != nil || lv.Level() != slog.LevelDebug {
		t.Fatalf("%v %v", err, lv.Level())
	}
	if err := fs.Parse([]string{"-log.level=LOUD"}); err == nil || !strings.Contains(err.Error(), "LOUD") {
		t.Fatalf("bad level: %v", err)
	}
	if s := (LevelFlag{Var: lv}).String(); s != "DEBUG" {
		t.Fatalf("String %q", s)
	}
}
