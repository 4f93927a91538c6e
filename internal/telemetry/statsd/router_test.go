package statsd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/routerd"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startRouter runs a linkerd config (text) with one router, label web,
// routing /svc/web to a loopback backend, and the given telemetry list.
func startRouter(t *testing.T, tel string) (*routerd.Process, *syncBuffer, string) {
	t.Helper()
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	t.Cleanup(be.Close)
	text := `
admin: {port: 0}
telemetry:
` + tel + `
routers:
- protocol: http
  label: web
  dtab: /svc/web => /$/inet/` + strings.Replace(be.Listener.Addr().String(), ":", "/", 1) + `;
  servers: [{port: 0}]
`
	cfg, err := routerd.LoadConfig([]byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	p, err := routerd.Start(context.Background(), cfg, routerd.Options{Text: []byte(text), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	return p, logs, be.Listener.Addr().String()
}

func get(t *testing.T, p *routerd.Process) time.Duration {
	t.Helper()
	start := time.Now()
	req, _ := http.NewRequest("GET", "http://"+p.ServerAddrs()[0]+"/", nil)
	req.Host = "web"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("%d %q; want 200 hello", resp.StatusCode, b)
	}
	return time.Since(start)
}

// sums adds up the values of the lines named name of type typ, and
// reports the rates they carried.
func sums(t *testing.T, lines []string, name, typ string) (sum float64, n int, rates map[string]bool) {
	rates = map[string]bool{}
	for _, l := range lines {
		p := parseLine(t, l)
		if p.name == name && p.typ == typ {
			sum += p.value
			n++
			rates[p.rate] = true
		}
	}
	return sum, n, rates
}

// A router built from a Linkerd config sends Linkerd's names: counters
// as |c, latency histograms as |ms (one line per request at rate 1),
// gauges as |g; every line is well-formed.
func TestRouterSendsStatsD(t *testing.T) {
	s := newSink(t)
	p, _, be := startRouter(t, fmt.Sprintf(`- kind: io.l5d.statsd
  experimental: true
  prefix: linkerd
  hostname: 127.0.0.1
  port: %d
  gaugeIntervalMs: 100
  sampleRate: 1.0
`, s.port()))
	const requests = 5
	for range requests {
		get(t, p)
	}
	service := "linkerd.rt.web.service.svc.web."
	client := "linkerd.rt.web.client._.inet." + strings.NewReplacer(".", "_", ":", ".").Replace(be) + "."
	server := "linkerd.rt.web.server.127_0_0_1." + p.ServerAddrs()[0][strings.LastIndex(p.ServerAddrs()[0], ":")+1:] + "."
	lines := s.waitFor(t, "5 requests counted and timed, and a gauge", func(ls []string) bool {
		r, _, _ := sums(t, ls, service+"requests", "c")
		_, timers, _ := sums(t, ls, service+"request_latency_ms", "ms")
		_, up, _ := sums(t, ls, "linkerd.process.uptime_ms", "g")
		return r >= requests && timers >= requests && up > 0
	})
	for _, name := range []string{service + "requests", service + "success", client + "requests", server + "requests"} {
		if sum, _, rates := sums(t, lines, name, "c"); sum != requests || len(rates) != 1 || !rates[""] {
			t.Errorf("%s: sum %v with rates %v; want %d, without |@", name, sum, rates, requests)
		}
	}
	for _, name := range []string{service + "request_latency_ms", client + "request_latency_ms", server + "request_latency_ms"} {
		if _, n, rates := sums(t, lines, name, "ms"); n != requests || !rates[""] {
			t.Errorf("%s: %d timer lines (rates %v); want %d, one per request", name, n, rates, requests)
		}
	}
	if _, n, _ := sums(t, lines, "linkerd.statsd.sent_packets", "c"); n == 0 {
		t.Error("no linkerd.statsd.sent_packets counter line")
	}
	for _, l := range lines {
		if strings.HasPrefix(l, service+"status.200:") && !strings.HasSuffix(l, "|c") {
			t.Errorf("status line %q is not a counter", l)
		}
	}
	for _, pk := range s.packets() {
		if len(pk) > MaxPacket {
			t.Errorf("datagram of %d bytes", len(pk))
		}
	}
}

// Below rate 1 every counter and timer line carries |@rate, and the
// counts are thinned accordingly.
func TestRouterSampleRate(t *testing.T) {
	s := newSink(t)
	p, _, _ := startRouter(t, fmt.Sprintf("- kind: io.l5d.statsd\n  experimental: true\n  port: %d\n  gaugeIntervalMs: 50\n  sampleRate: 0.5\n", s.port()))
	const requests = 200
	for range requests {
		get(t, p)
	}
	if err := p.Stop(); err != nil { // Close sends the last counts
		t.Fatal(err)
	}
	s.settle()
	lines := s.lines()
	name := "linkerd.rt.web.service.svc.web.requests"
	sum, n, rates := sums(t, lines, name, "c")
	// Binomial(200, 0.5): mean 100, sd 7.1; ±40 is 5.6 sd.
	if n == 0 || sum < 60 || sum > 140 || len(rates) != 1 || !rates["0.5"] {
		t.Fatalf("%s: sum %v over %d lines, rates %v; want about 100 (200 × 0.5), every line |@0.5", name, sum, n, rates)
	}
	_, timers, trates := sums(t, lines, "linkerd.rt.web.service.svc.web.request_latency_ms", "ms")
	if timers < 60 || timers > 140 || len(trates) != 1 || !trates["0.5"] {
		t.Fatalf("%d latency timer lines, rates %v; want about 100, every line |@0.5", timers, trates)
	}
	for _, l := range lines {
		if pl := parseLine(t, l); pl.typ == "g" && pl.rate != "" {
			t.Errorf("gauge line %q carries a sample rate", l)
		}
	}
}

// Linkerd refuses io.l5d.statsd without `experimental: true`; so does
// Linnet, in linkerd and namerd configs, naming the field.
func TestExperimentalRequired(t *testing.T) {
	_, err := routerd.LoadConfig([]byte(`
telemetry:
- kind: io.l5d.statsd
routers:
- protocol: http
  dtab: /svc => /$/inet/127.1/1;
  servers: [{port: 0}]
`))
	if err == nil || !strings.Contains(err.Error(), "telemetry[0].experimental") ||
		!strings.Contains(err.Error(), "io.l5d.statsd telemeter is experimental and must be explicitly enabled by setting `experimental: true`") {
		t.Fatalf("linkerd config without experimental: %v", err)
	}
	var cfg namerd.Config
	err = config.Load([]byte("storage: {kind: io.l5d.inMemory}\ninterfaces: [{kind: io.l5d.httpController, port: 0}]\ntelemetry:\n- kind: io.l5d.statsd\n  experimental: false\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), "telemetry[0].experimental") {
		t.Fatalf("namerd config without experimental: %v", err)
	}
}

// Config errors name the field and the value.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ keys, want string }{
		{"port: 0", "telemetry[0].port: must be between 1 and 65535, got 0"},
		{"port: 70000", "telemetry[0].port: must be between 1 and 65535, got 70000"},
		{"sampleRate: 0", "telemetry[0].sampleRate: must be greater than 0 and at most 1, got 0"},
		{"sampleRate: 1.5", "telemetry[0].sampleRate: must be greater than 0 and at most 1, got 1.5"},
		{"gaugeIntervalMs: 0", "telemetry[0].gaugeIntervalMs: must be positive, got 0"},
		{"prefix: 'a:b'", `telemetry[0].prefix: "a:b" contains ':'`},
		{"prefix: 'a b'", `telemetry[0].prefix: "a b" contains ' '`},
		{"prefix: \"a\\tb\"", `telemetry[0].prefix: "a\tb" contains '\t'`},
		{"hostname: ''", "telemetry[0].hostname: must not be empty"},
		{"hostname: no-such-host.invalid", `telemetry[0].hostname: cannot resolve "no-such-host.invalid"`},
		{"gaugePeriodMs: 5", "gaugePeriodMs"},
	} {
		var d struct {
			Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
		}
		err := config.Load([]byte("telemetry:\n- kind: io.l5d.statsd\n  experimental: true\n  "+tc.keys+"\n"), &d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v; want an error containing %q", tc.keys, err, tc.want)
		}
	}
	var d struct {
		Telemetry []config.Kinded[telemetry.TelemeterConfig] `yaml:"telemetry"`
	}
	if err := config.Load([]byte("telemetry:\n- kind: io.l5d.statsd\n  experimental: true\n  hostname: localhost\n"), &d); err != nil {
		t.Fatal(err)
	}
	c := d.Telemetry[0].Value.(*Config)
	if c.Prefix != "linkerd" || c.Port != 8125 || c.GaugeIntervalMs != 10000 || c.SampleRate != 0.01 || !c.addr.IP.IsLoopback() || c.addr.Port != 8125 {
		t.Errorf("defaults: %+v (addr %v); want prefix linkerd, port 8125, gaugeIntervalMs 10000, sampleRate 0.01, localhost resolved", c, c.addr)
	}
}

// With nothing listening on the StatsD port, requests neither fail nor
// slow down, the errors are counted, and the failure is logged once.
func TestDeadStatsDDoesNotHurtRequests(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := conn.LocalAddr().(*net.UDPAddr).Port
	conn.Close()
	p, logs, _ := startRouter(t, fmt.Sprintf("- kind: io.l5d.statsd\n  experimental: true\n  port: %d\n  gaugeIntervalMs: 20\n  sampleRate: 1\n", dead))
	var slowest time.Duration
	deadline := time.Now().Add(500 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) || n < 50 {
		slowest = max(slowest, get(t, p))
		n++
	}
	if slowest > time.Second {
		t.Errorf("slowest of %d requests took %v", n, slowest)
	}
	errs := p.Registry().Scope().Scope("statsd").Counter("send_errors").Value()
	if errs < 3 {
		t.Errorf("statsd/send_errors = %d after 500 ms of 20 ms flushes to a dead port; want several", errs)
	}
	if c := strings.Count(logs.String(), "cannot send metrics to the StatsD server"); c != 1 {
		t.Errorf("%d log lines about the dead server; want 1:\n%s", c, logs.String())
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// namerd accepts the same telemeter and sends its own metrics.
func TestNamerdSendsStatsD(t *testing.T) {
	s := newSink(t)
	text := fmt.Sprintf(`admin: {port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    default: /svc => /$/inet/127.1/1;
interfaces:
- kind: io.l5d.httpController
  port: 0
telemetry:
- kind: io.l5d.statsd
  experimental: true
  prefix: namerd
  port: %d
  gaugeIntervalMs: 100
  sampleRate: 1
`, s.port())
	var cfg namerd.Config
	if err := config.Load([]byte(text), &cfg); err != nil {
		t.Fatal(err)
	}
	p, err := namerd.Start(context.Background(), &cfg, namerd.Options{Text: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for range 3 {
		resp, err := http.Get("http://" + p.InterfaceAddrs()[0] + "/api/1/dtabs")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /api/1/dtabs: %d", resp.StatusCode)
		}
	}
	s.waitFor(t, "namerd's request counter at 3", func(ls []string) bool {
		sum, _, _ := sums(t, ls, "namerd.interface.io_l5d_httpController.requests", "c")
		_, g, _ := sums(t, ls, "namerd.interface.io_l5d_httpController.open_streams", "g")
		return sum == 3 && g > 0
	})
}
