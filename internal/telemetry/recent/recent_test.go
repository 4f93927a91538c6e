package recent

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func TestRingKeepsNewest(t *testing.T) {
	rc := New(1, 3)
	for i := range 5 {
		rc.Record(telemetry.RequestRecord{Logical: "/svc/" + string(rune('a'+i))})
	}
	got := rc.Recent()
	if len(got) != 3 || got[0].Logical != "/svc/e" || got[1].Logical != "/svc/d" || got[2].Logical != "/svc/c" {
		t.Fatalf("got %+v", got)
	}
	if got[0].Time.IsZero() {
		t.Fatal("time not set")
	}
}

func TestSampling(t *testing.T) {
	none := New(0, 10)
	for range 100 {
		none.Record(telemetry.RequestRecord{})
	}
	if n := len(none.Recent()); n != 0 {
		t.Fatalf("rate 0 kept %d", n)
	}
	some := New(0.5, 100000)
	for range 4000 {
		some.Record(telemetry.RequestRecord{})
	}
	if n := len(some.Recent()); n < 1600 || n > 2400 {
		t.Fatalf("rate 0.5 kept %d of 4000", n)
	}
}

func TestConcurrentRecord(t *testing.T) {
	rc := New(1, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				rc.Record(telemetry.RequestRecord{Router: "r"})
				_ = rc.Recent()
			}
		}()
	}
	wg.Wait()
	if len(rc.Recent()) != 8 {
		t.Fatal("ring not full")
	}
}

func TestPages(t *testing.T) {
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	if err := config.Load([]byte("telemetry:\n- kind: io.l5d.recentRequests\n  sampleRate: 1.0\n"), &d); err != nil {
		t.Fatal(err)
	}
	tm, err := d.Telemetry[0].Value.NewTelemeter(telemetry.TelemeterEnv{})
	if err != nil {
		t.Fatal(err)
	}
	tm.(telemetry.RequestRecorder).Record(telemetry.RequestRecord{
		Time: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC), Source: "127.0.0.1:5555", Server: "0.0.0.0:4140",
		Router: "outgoing", Logical: "/svc/<hello>", Concrete: "/#/io.l5d.fs/hello", Destination: "127.0.0.1:8888",
		Method: "GET", URI: "/", Status: 200, Duration: 3 * time.Millisecond,
	})
	mux := http.NewServeMux()
	for _, h := range tm.AdminHandlers() {
		mux.Handle(h.Path, h.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := func(p string) string {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	html := body("/requests")
	for _, want := range []string{"2026-11-25 18:00:00.000", "/svc/&lt;hello&gt;", "/#/io.l5d.fs/hello", "127.0.0.1:8888", "outgoing", "The last 10 requests"} {
		if !strings.Contains(html, want) {
			t.Errorf("/requests lacks %q", want)
		}
	}
	var recs []map[string]any
	if err := json.Unmarshal([]byte(body("/requests.json")), &recs); err != nil || len(recs) != 1 || recs[0]["concreteName"] != "/#/io.l5d.fs/hello" {
		t.Fatalf("/requests.json: %v %v", recs, err)
	}
}

func TestConfigErrors(t *testing.T) {
	type doc struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	for _, bad := range []struct{ text, want string }{
		{"telemetry:\n- kind: io.l5d.recentRequests\n", "telemetry[0].sampleRate"},
		{"telemetry:\n- kind: io.l5d.recentRequests\n  sampleRate: 1.5\n", "telemetry[0].sampleRate"},
		{"telemetry:\n- kind: io.l5d.recentRequests\n  sampleRate: 1\n  capacity: 0\n", "telemetry[0].capacity"},
	} {
		err := config.Load([]byte(bad.text), &doc{})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error naming %s", bad.text, err, bad.want)
		}
	}
}
