// Package recent is the io.l5d.recentRequests telemeter: it keeps the last
// sampled requests in a ring buffer and serves them on the admin page
// /requests (HTML) and /requests.json.
package recent

import (
	"encoding/json"
	"html/template"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Kind is the telemeter kind this package registers.
const Kind = "io.l5d.recentRequests"

// DefaultCapacity is how many requests are kept by default.
const DefaultCapacity = 10

func init() {
	config.Register[telemetry.TelemeterConfig](Kind, func() telemetry.TelemeterConfig { return &Config{} })
}

// Config is the io.l5d.recentRequests telemeter:
//
//	telemetry:
//	- kind: io.l5d.recentRequests
//	  sampleRate: 0.25
//	  capacity: 10
type Config struct {
	telemetry.TelemeterCommon `yaml:",inline"`
	// SampleRate is the fraction of requests recorded (0..1). Required.
	SampleRate *float64 `yaml:"sampleRate"`
	// Capacity is how many requests are kept. Default 10.
	Capacity int `yaml:"capacity"`
}

// SetDefaults implements config.Defaulter.
func (c *Config) SetDefaults() { c.Capacity = DefaultCapacity }

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.SampleRate == nil {
		return config.FieldError("sampleRate", "is required (a fraction between 0 and 1)")
	}
	if *c.SampleRate < 0 || *c.SampleRate > 1 {
		return config.FieldError("sampleRate", "must be between 0 and 1, got %v", *c.SampleRate)
	}
	if c.Capacity < 1 || c.Capacity > 100000 {
		return config.FieldError("capacity", "must be between 1 and 100000, got %d", c.Capacity)
	}
	return nil
}

// NewTelemeter implements telemetry.TelemeterConfig.
func (c *Config) NewTelemeter(telemetry.TelemeterEnv) (telemetry.Telemeter, error) {
	return New(*c.SampleRate, c.Capacity), nil
}

// Recorder keeps the most recent sampled requests. It is a
// telemetry.Telemeter and a telemetry.RequestRecorder.
type Recorder struct {
	rate float64
	mu   sync.Mutex
	buf  []telemetry.RequestRecord // ring, len == capacity once full
	next int                       // index of the oldest entry once full
}

// New returns a Recorder sampling rate (0..1) of requests, keeping capacity.
func New(rate float64, capacity int) *Recorder {
	return &Recorder{rate: rate, buf: make([]telemetry.RequestRecord, 0, max(capacity, 1))}
}

// Record implements telemetry.RequestRecorder: it keeps r with probability
// rate, evicting the oldest entry when full. A zero Time is set to now.
func (rc *Recorder) Record(r telemetry.RequestRecord) {
	if rc.rate <= 0 || (rc.rate < 1 && rand.Float64() >= rc.rate) {
		return
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.buf) < cap(rc.buf) {
		rc.buf = append(rc.buf, r)
		return
	}
	rc.buf[rc.next] = r
	rc.next = (rc.next + 1) % len(rc.buf)
}

// Recent returns the kept requests, newest first.
func (rc *Recorder) Recent() []telemetry.RequestRecord {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]telemetry.RequestRecord, 0, len(rc.buf))
	for i := len(rc.buf) - 1; i >= 0; i-- {
		out = append(out, rc.buf[(rc.next+i)%len(rc.buf)])
	}
	return out
}

// AdminHandlers implements telemetry.Telemeter: /requests and /requests.json.
func (rc *Recorder) AdminHandlers() []telemetry.AdminHandler {
	return []telemetry.AdminHandler{
		{Path: "/requests", Handler: http.HandlerFunc(rc.serveHTML)},
		{Path: "/requests.json", Handler: http.HandlerFunc(rc.serveJSON)},
	}
}

// Close implements telemetry.Telemeter.
func (rc *Recorder) Close() error { return nil }

type jsonRecord struct {
	Timestamp   string `json:"timestamp"`
	Source      string `json:"source"`
	Server      string `json:"server"`
	Router      string `json:"router"`
	Logical     string `json:"logicalName"`
	Concrete    string `json:"concreteName"`
	Destination string `json:"destination"`
	Method      string `json:"method,omitempty"`
	URI         string `json:"uri,omitempty"`
	Status      int    `json:"status,omitempty"`
	DurationMs  int64  `json:"durationMs"`
}

func (rc *Recorder) serveJSON(w http.ResponseWriter, _ *http.Request) {
	recs := rc.Recent()
	out := make([]jsonRecord, len(recs))
	for i, r := range recs {
		out[i] = jsonRecord{r.Time.UTC().Format(time.RFC3339Nano), r.Source, r.Server, r.Router,
			r.Logical, r.Concrete, r.Destination, r.Method, r.URI, r.Status, r.Duration.Milliseconds()}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (rc *Recorder) serveHTML(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = page.Execute(w, struct {
		Rate     float64
		Capacity int
		Requests []telemetry.RequestRecord
	}{rc.rate, cap(rc.buf), rc.Recent()})
}

var page = template.Must(template.New("requests").Funcs(template.FuncMap{
	"ts": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") },
	"ms": func(d time.Duration) int64 { return d.Milliseconds() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Recent requests</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;font-family:ui-monospace,monospace}
th{background:#f4f6f8;font-family:system-ui,sans-serif}
a{color:#0b63b6}
</style></head><body>
<p><a href="/">dashboard</a> · <a href="/delegator">dtab playground</a> · <a href="/requests.json">json</a></p>
<h1>Recent requests</h1>
<p>The last {{.Capacity}} requests, sampling {{.Rate}} of all.</p>
<table id="requests"><thead><tr><th>Timestamp</th><th>Source</th><th>Server</th><th>Router</th><th>Logical name</th><th>Concrete name</th><th>Destination</th><th>Request</th><th>Status</th><th>ms</th></tr></thead><tbody>
{{range .Requests}}<tr><td>{{ts .Time}}</td><td>{{.Source}}</td><td>{{.Server}}</td><td>{{.Router}}</td><td>{{.Logical}}</td><td>{{.Concrete}}</td><td>{{.Destination}}</td><td>{{.Method}} {{.URI}}</td><td>{{if .Status}}{{.Status}}{{else}}error{{end}}</td><td>{{ms .Duration}}</td></tr>
{{else}}<tr><td colspan="10">No requests recorded yet.</td></tr>
{{end}}</tbody></table>
</body></html>
`))

var (
	_ telemetry.Telemeter       = (*Recorder)(nil)
	_ telemetry.RequestRecorder = (*Recorder)(nil)
)
