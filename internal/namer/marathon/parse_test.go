package marathon

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// fixtureApp returns {"app": <app id of testdata/apps.json>}, as
// GET /v2/apps/<id>?embed=app.tasks answers.
func fixtureApp(t testing.TB, id string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Apps []map[string]any }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, a := range doc.Apps {
		if a["id"] == id {
			out, _ := json.Marshal(map[string]any{"app": a})
			return out
		}
	}
	t.Fatalf("no app %s in the fixture", id)
	return nil
}

func TestParseApps(t *testing.T) {
	b, err := os.ReadFile("testdata/apps.json")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ParseApps(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids); got != "[/webapp /shop/users /shop/ipapp /idle]" {
		t.Errorf("ids %s", got)
	}
	for _, c := range []struct{ doc, want string }{
		{`{"apps": []}`, "[]"},
		{`{"apps": [{"id": "/a"}, {"id": ""}, {"id": "/"}, {"id": "/b c"}, {"id": "d/e"}, {"cmd": "x"}]}`, "[/a /d/e]"},
	} {
		ids, err := ParseApps([]byte(c.doc))
		if err != nil || fmt.Sprint(ids) != c.want {
			t.Errorf("%s: %v %v, want %s", c.doc, ids, err, c.want)
		}
	}
	for _, c := range []struct{ doc, want string }{
		{`{}`, `no "apps" list`},
		{`{"apps": null}`, `no "apps" list`},
		{`[]`, "not Marathon's JSON"},
		{`{"apps": [`, "not Marathon's JSON"},
		{`<html>`, "not Marathon's JSON"},
	} {
		if _, err := ParseApps([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.doc, err, c.want)
		}
	}
}

func TestParseApp(t *testing.T) {
	for _, c := range []struct {
		id     string
		health bool
		want   string
	}{
		{"/webapp", false, "[{127.0.0.11 31001} {127.0.0.12 31002}]"}, // the staging task is left out
		{"/webapp", true, "[{127.0.0.11 31001} {127.0.0.12 31002}]"},
		{"/shop/users", false, "[{127.0.0.21 31101} {127.0.0.22 31103} {agent-3.marathon.test 31105}]"},
		{"/shop/users", true, "[{127.0.0.21 31101}]"}, // one check failing; one task not checked yet
		{"/shop/ipapp", false, "[{127.0.0.31 8080}]"},
		{"/shop/ipapp", true, "[{127.0.0.31 8080}]"},
		{"/idle", true, "[]"},
	} {
		eps, err := ParseApp(fixtureApp(t, c.id), c.health)
		if err != nil || fmt.Sprint(eps) != c.want {
			t.Errorf("%s (useHealthCheck %v): %v %v, want %s", c.id, c.health, eps, err, c.want)
		}
	}
	for _, c := range []struct{ doc, want string }{
		{`{"app": {"tasks": [{"host": "h", "ports": [0]}, {"host": "h", "ports": [70000]}, {"host": "h"}, {"ports": [1]}]}}`, "[]"},
		{`{"app": {"tasks": [{"host": "h", "ports": [1], "state": "TASK_KILLING"}, {"host": "h", "ports": [2], "state": "TASK_UNREACHABLE"}, {"host": "h", "ports": [3]}]}}`, "[{h 3}]"},
		{`{"app": {"tasks": [{"ipAddresses": [{"ipAddress": "127.0.0.9"}]}]}}`, "[]"}, // no discovery port
	} {
		eps, err := ParseApp([]byte(c.doc), false)
		if err != nil || fmt.Sprint(eps) != c.want {
			t.Errorf("%s: %v %v, want %s", c.doc, eps, err, c.want)
		}
	}
	for _, c := range []struct{ doc, want string }{
		{`{}`, `no "app" object`},
		{`{"app": {"tasks": {}}}`, "not Marathon's JSON"},
		{`nope`, "not Marathon's JSON"},
	} {
		if _, err := ParseApp([]byte(c.doc), true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.doc, err, c.want)
		}
	}
	// A health check result without "alive" is not a pass.
	eps, _ := ParseApp([]byte(`{"app": {"healthChecks": [{}], "tasks": [{"host": "h", "ports": [1], "healthCheckResults": [{"consecutiveFailures": 0}]}]}}`), true)
	if len(eps) != 0 {
		t.Errorf("result without alive: %v", eps)
	}
}

// FuzzParseApps feeds both Marathon parsers arbitrary bytes: they must
// never panic, and what they return must be usable: non-empty ids made of
// non-empty segments, endpoints with a host and a TCP port.
func FuzzParseApps(f *testing.F) {
	b, err := os.ReadFile("testdata/apps.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, id := range []string{"/webapp", "/shop/users", "/shop/ipapp"} {
		f.Add(fixtureApp(f, id))
	}
	f.Add([]byte(`{"apps": [{"id": "/a/b"}, {"id": "//x//"}, {"id": 7}]}`))
	f.Add([]byte(`{"app": {"ipAddress": {"discovery": {"ports": [{"number": 65536}]}}, "tasks": [{"ipAddresses": [{"ipAddress": "x"}]}]}}`))
	f.Add([]byte(`{"app": {"healthChecks": [1, 2], "tasks": [{"host": "h", "ports": [5], "healthCheckResults": [{"alive": true}, {"alive": null}]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ids, err := ParseApps(b); err == nil {
			for _, id := range ids {
				if len(id) == 0 {
					t.Fatalf("empty app id from %q", b)
				}
				for _, s := range id {
					if s == "" {
						t.Fatalf("empty segment in %v from %q", id, b)
					}
				}
			}
		}
		for _, health := range []bool{false, true} {
			eps, err := ParseApp(b, health)
			if err != nil {
				continue
			}
			for _, e := range eps {
				if e.Host == "" || e.Port < 1 || e.Port > 65535 {
					t.Fatalf("bad endpoint %+v from %q", e, b)
				}
			}
		}
	})
}
