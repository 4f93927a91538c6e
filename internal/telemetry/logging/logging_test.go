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
	resp, err := http.PostForm(srv.URL, url.Values{"level": {"DEBUG"}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if lv.Level() != slog.LevelDebug || m["level"] != "DEBUG" {
		t.Fatalf("level %v, reply %v", lv.Level(), m)
	}
	resp, err = http.PostForm(srv.URL, url.Values{"level": {"nope"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || lv.Level() != slog.LevelDebug {
		t.Fatalf("bad level: %d, level now %v", resp.StatusCode, lv.Level())
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
