package statsd

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

func TestMetricName(t *testing.T) {
	for _, tc := range []struct{ prefix, full, want string }{
		{"linkerd", "rt/incoming/service/svc/web/requests", "linkerd.rt.incoming.service.svc.web.requests"},
		{"linkerd", "rt/out/client/$/inet/127.1/8888/connections", "linkerd.rt.out.client._.inet.127_1.8888.connections"},
		{"linkerd", "rt/out/client/#/io.l5d.fs/web/requests", "linkerd.rt.out.client._.io_l5d_fs.web.requests"},
		{"linkerd", "rt/in/server/127.0.0.1/4141/status/2XX", "linkerd.rt.in.server.127_0_0_1.4141.status.2XX"},
		{"linkerd", "rt/in/service/svc/a b:c|d@e/requests", "linkerd.rt.in.service.svc.a_b_c_d_e.requests"},
		{"linkerd", "rt/in/service//requests", "linkerd.rt.in.service.requests"}, // the root path's node "/"
		{"linkerd", "/a//b/", "linkerd.a.b"},
		{"linkerd", "rt/in/service/svc/café/requests", "linkerd.rt.in.service.svc.caf_.requests"},
		{"", "process/uptime_ms", "process.uptime_ms"},
		{"prod.l5d.", "requests", "prod.l5d.requests"},
		{"my-mesh", "requests", "my-mesh.requests"},
	} {
		if got := metricName(tc.prefix, tc.full); got != tc.want {
			t.Errorf("metricName(%q, %q) = %q; want %q", tc.prefix, tc.full, got, tc.want)
		}
	}
}

// newTestExporter returns an exporter sending to s from reg, with its own
// send counters in a separate registry so that outputs stay exact.
func newTestExporter(t *testing.T, s *sink, reg *telemetry.Registry, rate float64, seed uint64) (*exporter, *telemetry.Registry) {
	t.Helper()
	own := telemetry.NewRegistry()
	c, err := newClient(s.addr(), own.Scope().Scope("statsd"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	e := newExporter(reg, c, options{
		prefix: "linkerd", sampleRate: rate, gaugeEvery: 10 * time.Second,
		rand: rand.New(rand.NewPCG(seed, seed+1)),
	})
	return e, own
}

// At rate 1 every kind of metric is sent exactly, in name order; a second
// flush sends only what changed, and gauges only when they are due.
func TestExactLines(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	rt := telemetry.RouterScope(reg.Scope(), "web")
	svc := telemetry.ServiceScope(rt, "/svc/web")
	svc.Counter("requests").Add(3)
	svc.Counter("status/200").Add(3)
	svc.Counter("failures").Add(0)
	lat := svc.Stat("request_latency_ms")
	for _, v := range []int64{2, 2, 40} {
		lat.Add(v)
	}
	cl := telemetry.ClientScope(rt, "/$/inet/127.1/8888")
	cl.Gauge("connections", func() float64 { return 2 })
	cl.Gauge("loadbalancer/size", func() float64 { return 1.5 })
	cl.Gauge("delta", func() float64 { return -4 })
	cl.Gauge("nan", func() float64 { return math.NaN() })

	e, own := newTestExporter(t, s, reg, 1, 1)
	start := e.lastGauges
	e.flush(start.Add(10*time.Second), true)
	got := strings.Join(s.take(t, true), "|PACKET|")
	want := strings.Join([]string{
		"linkerd.rt.web.client._.inet.127_1.8888.connections:2|g",
		"linkerd.rt.web.client._.inet.127_1.8888.delta:0|g",
		"linkerd.rt.web.client._.inet.127_1.8888.delta:-4|g",
		"linkerd.rt.web.client._.inet.127_1.8888.loadbalancer.size:1.5|g",
		"linkerd.rt.web.service.svc.web.requests:3|c",
		"linkerd.rt.web.service.svc.web.status.200:3|c",
		"linkerd.rt.web.service.svc.web.request_latency_ms:2|ms",
		"linkerd.rt.web.service.svc.web.request_latency_ms:2|ms",
		"linkerd.rt.web.service.svc.web.request_latency_ms:40|ms",
	}, "\n")
	if got != want {
		t.Fatalf("first flush:\n%s\nwant (one datagram):\n%s", got, want)
	}
	if n := own.Scope().Scope("statsd").Counter("sent_packets").Value(); n != 1 {
		t.Errorf("statsd/sent_packets = %d; want 1", n)
	}

	svc.Counter("requests").Inc()
	lat.Add(7)
	e.flush(start.Add(11*time.Second), true) // gauges not due: sent 1 s ago
	got = strings.Join(s.take(t, true), "|PACKET|")
	want = "linkerd.rt.web.service.svc.web.requests:1|c\nlinkerd.rt.web.service.svc.web.request_latency_ms:7|ms"
	if got != want {
		t.Fatalf("second flush:\n%s\nwant:\n%s", got, want)
	}

	e.flush(start.Add(12*time.Second), true)
	time.Sleep(20 * time.Millisecond)
	if got := s.take(t, false); len(got) != 0 {
		t.Fatalf("flush with nothing changed sent %q", got)
	}
	e.flush(start.Add(20*time.Second), true) // gauges due again
	got = strings.Join(s.take(t, true), "\n")
	if strings.Count(got, "|g") != 4 || strings.Contains(got, "|c") || strings.Contains(got, "|ms") {
		t.Fatalf("gauge flush sent:\n%s\nwant the 4 gauge lines only", got)
	}
}

var lineRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+):(-?[0-9]+(?:\.[0-9]+)?)\|(c|ms|g)(?:\|@(0\.[0-9]+|1))?$`)

type parsed struct {
	name, typ string
	value     float64
	rate      string
}

func parseLine(t *testing.T, l string) parsed {
	t.Helper()
	m := lineRE.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("malformed statsd line %q", l)
	}
	v, _ := strconv.ParseFloat(m[2], 64)
	return parsed{name: m[1], value: v, typ: m[3], rate: m[4]}
}

// Below rate 1 a counter that grew by d sends Binomial(d, rate) with
// |@rate: the server's estimate (sum / rate) is close to the truth.
func TestCounterSampling(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	c := reg.Scope().Counter("requests")
	e, _ := newTestExporter(t, s, reg, 0.25, 42)
	const perFlush, flushes = 40, 100 // 4000 increments, expected 1000 sent
	for range flushes {
		for range perFlush {
			c.Inc()
		}
		e.flush(e.lastGauges, false)
	}
	s.settle()
	var sum float64
	for _, l := range s.lines() {
		p := parseLine(t, l)
		if p.name != "linkerd.requests" || p.typ != "c" || p.rate != "0.25" {
			t.Fatalf("line %q; want linkerd.requests:N|c|@0.25", l)
		}
		sum += p.value
	}
	// Binomial(4000, 0.25): mean 1000, sd 27.4; ±150 is 5.5 sd.
	if sum < 850 || sum > 1150 {
		t.Fatalf("sampled sum %v; want about 1000 (4000 × 0.25)", sum)
	}
}

// Histogram values survive the registry's interval roll: values added
// before and after a roll, between two flushes, are each sent once.
func TestHistogramAcrossRoll(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	st := reg.Scope().Stat("lat")
	e, _ := newTestExporter(t, s, reg, 1, 7)
	st.Add(1)
	st.Add(3)
	e.flush(e.lastGauges, false)
	st.Add(5) // in the interval the roll closes, not yet sent
	reg.Roll()
	st.Add(9) // in the new interval
	e.flush(e.lastGauges, false)
	st.Add(11)
	e.flush(e.lastGauges, false)
	reg.Roll() // a roll with nothing new
	e.flush(e.lastGauges, false)
	s.settle()
	var vals []string
	for _, l := range s.lines() {
		p := parseLine(t, l)
		if p.typ != "ms" || p.rate != "" {
			t.Fatalf("line %q; want a timer without rate", l)
		}
		vals = append(vals, strconv.FormatFloat(p.value, 'f', -1, 64))
	}
	if got := strings.Join(vals, " "); got != "1 3 5 9 11" {
		t.Fatalf("timer values %q; want each value once: 1 3 5 9 11", got)
	}
}

// A roll (by another exporter) between the registry walk and the live
// snapshots does not send values twice or lose them.
func TestRollRacingFlush(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	st := reg.Scope().Stat("lat")
	e, _ := newTestExporter(t, s, reg, 1, 7)
	st.Add(1)
	e.flush(e.lastGauges, false)
	st.Add(5)
	e.beforeLive = reg.Roll
	e.flush(e.lastGauges, false)
	e.beforeLive = nil
	st.Add(9)
	e.flush(e.lastGauges, false)
	e.flush(e.lastGauges, false)
	s.settle()
	var vals []string
	for _, l := range s.lines() {
		vals = append(vals, strconv.FormatFloat(parseLine(t, l).value, 'f', -1, 64))
	}
	if got := strings.Join(vals, " "); got != "1 5 9" {
		t.Fatalf("timer values %q; want each value once: 1 5 9", got)
	}
}

// A busy histogram sends at most maxTimerLines per flush, with the rate
// lowered so that the server still estimates the count.
func TestTimerCap(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	st := reg.Scope().Stat("lat")
	for i := range 5000 {
		st.Add(int64(i % 20))
	}
	e, _ := newTestExporter(t, s, reg, 1, 3)
	e.flush(e.lastGauges, false)
	s.settle()
	ls := s.lines()
	if len(ls) > maxTimerLines+100 || len(ls) < maxTimerLines-100 {
		t.Fatalf("%d timer lines; want about %d", len(ls), maxTimerLines)
	}
	for _, l := range ls {
		if p := parseLine(t, l); p.rate != "0.2" {
			t.Fatalf("line %q; want rate 0.2 (1000 of 5000)", l)
		}
	}
	for _, p := range s.packets() {
		if len(p) > MaxPacket {
			t.Fatalf("datagram of %d bytes; max %d", len(p), MaxPacket)
		}
	}
}

// Lines are packed into datagrams of at most MaxPacket bytes, never split;
// a line longer than MaxPacket travels alone.
func TestBatching(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	want := map[string]bool{}
	for i := range 300 {
		reg.Scope().Scope("rt", "web", "service", "svc/n"+strconv.Itoa(i)).Counter("requests").Inc()
		want["linkerd.rt.web.service.svc.n"+strconv.Itoa(i)+".requests:1|c"] = true
	}
	long := strings.Repeat("x", 2000)
	reg.Scope().Counter(long).Inc()
	want["linkerd."+long+":1|c"] = true
	e, own := newTestExporter(t, s, reg, 1, 1)
	e.flush(e.lastGauges, false)
	s.settle()
	pkts := s.packets()
	if len(pkts) < 10 {
		t.Fatalf("%d datagrams for ~14 KB of lines", len(pkts))
	}
	seen := 0
	for _, p := range pkts {
		if len(p) > MaxPacket && strings.Contains(p, "\n") {
			t.Fatalf("datagram of %d bytes with several lines", len(p))
		}
		for _, l := range strings.Split(p, "\n") {
			if !want[l] {
				t.Fatalf("unexpected or split line %q", l)
			}
			seen++
		}
	}
	if seen != len(want) {
		t.Fatalf("%d lines received; want %d", seen, len(want))
	}
	if n := own.Scope().Scope("statsd").Counter("sent_packets").Value(); n != int64(len(pkts)) {
		t.Errorf("statsd/sent_packets = %d; %d datagrams received", n, len(pkts))
	}
}

// bucketFloor agrees with the registry's histogram buckets.
func TestBucketFloor(t *testing.T) {
	for _, v := range []int64{0, 1, 15, 16, 17, 31, 32, 33, 40, 63, 64, 65, 100, 1000, 12345, 1 << 20, 1<<40 + 12345} {
		st := telemetry.NewStat()
		st.Add(v)
		ub := st.Snapshot().Buckets[0].UpperBound
		lo := bucketFloor(ub)
		if lo > v || v > ub {
			t.Errorf("value %d: bucket [%d, %d] does not hold it", v, lo, ub)
		}
		st2 := telemetry.NewStat()
		st2.Add(lo)
		if ub2 := st2.Snapshot().Buckets[0].UpperBound; ub2 != ub {
			t.Errorf("value %d: floor %d lands in the bucket ending at %d, not %d", v, lo, ub2, ub)
		}
	}
}

func TestBinomial(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		n int64
		p float64
	}{{10, 0.3}, {100, 0.01}, {1000, 0.01}, {5000, 0.25}, {1e6, 0.01}, {200, 0.9}, {7, 1}, {0, 0.5}} {
		const draws = 2000
		var sum, sq float64
		for range draws {
			k := binomial(r, tc.n, tc.p)
			if k < 0 || k > tc.n {
				t.Fatalf("binomial(%d, %v) = %d", tc.n, tc.p, k)
			}
			sum += float64(k)
			sq += float64(k) * float64(k)
		}
		mean := sum / draws
		variance := sq/draws - mean*mean
		wantMean := float64(tc.n) * tc.p
		wantVar := wantMean * (1 - tc.p)
		if math.Abs(mean-wantMean) > 6*math.Sqrt(wantVar/draws)+1e-9 {
			t.Errorf("binomial(%d, %v): mean %v; want %v", tc.n, tc.p, mean, wantMean)
		}
		if wantVar > 0 && math.Abs(variance-wantVar) > 0.2*wantVar {
			t.Errorf("binomial(%d, %v): variance %v; want %v", tc.n, tc.p, variance, wantVar)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for r, want := range map[float64]string{0.01: "0.01", 0.5: "0.5", 1e-5: "0.00001", 1.0 / 3: "0.333333", 0.0123456789: "0.0123457"} {
		if got := formatRate(r); got != want {
			t.Errorf("formatRate(%v) = %q; want %q", r, got, want)
		}
	}
}

// A server that is down: every send fails or is refused, and the failure
// is counted per datagram but logged once.
func TestDeadServerLoggedOnce(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead := conn.LocalAddr().(*net.UDPAddr)
	conn.Close()
	var logs bytes.Buffer
	reg := telemetry.NewRegistry()
	c, err := newClient(dead, reg.Scope().Scope("statsd"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	start := time.Now()
	for range 50 {
		c.add([]byte("linkerd.requests:1|c"))
		c.flush()
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("50 sends to a dead port took %v", d)
	}
	errs := reg.Scope().Scope("statsd").Counter("send_errors").Value()
	sent := reg.Scope().Scope("statsd").Counter("sent_packets").Value()
	if errs < 20 || errs+sent != 50 {
		t.Errorf("send_errors %d, sent_packets %d; want about half of 50 refused (ICMP port unreachable), all accounted", errs, sent)
	}
	if n := strings.Count(logs.String(), "cannot send metrics"); n != 1 {
		t.Errorf("%d log lines about the failure; want 1:\n%s", n, logs.String())
	}
	// After a quiet period, a new outage is logged again.
	c.now = func() time.Time { return time.Now().Add(2 * quietPeriod) }
	for range 4 {
		c.add([]byte("linkerd.requests:1|c"))
		c.flush()
	}
	if n := strings.Count(logs.String(), "cannot send metrics"); n != 2 {
		t.Errorf("%d log lines after a quiet period; want 2", n)
	}
}

// BenchmarkFlush measures one flush of a router-sized registry (300
// counters, 30 histograms and 30 gauges, all changed) at rate 0.01.
func BenchmarkFlush(b *testing.B) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	go func() {
		buf := make([]byte, 1<<16)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	reg := telemetry.NewRegistry()
	var counters []*telemetry.Counter
	var stats []*telemetry.Stat
	for i := range 30 {
		sc := telemetry.ServiceScope(telemetry.RouterScope(reg.Scope(), "web"), "/svc/s"+strconv.Itoa(i))
		for j := range 10 {
			counters = append(counters, sc.Counter("status/"+strconv.Itoa(200+j)))
		}
		stats = append(stats, sc.Stat("request_latency_ms"))
		sc.Gauge("pending", func() float64 { return 1 })
	}
	c, err := newClient(conn.LocalAddr().(*net.UDPAddr), reg.Scope().Scope("statsd"), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	e := newExporter(reg, c, options{prefix: "linkerd", sampleRate: 0.01, gaugeEvery: time.Nanosecond})
	b.ReportAllocs()
	for b.Loop() {
		for i, ct := range counters {
			ct.Add(100)
			if i%10 == 0 {
				for v := range 100 {
					stats[i/10].Add(int64(v))
				}
			}
		}
		e.flush(time.Now(), true)
	}
}

// Close sends what changed since the last tick, stops the goroutine and
// closes the socket; a second Close is harmless.
func TestCloseSendsLastCounts(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	tm, err := start(telemetry.TelemeterEnv{Registry: reg}, options{
		addr: s.addr(), prefix: "linkerd", sampleRate: 1, gaugeEvery: time.Hour, flushEvery: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.Scope().Counter("requests").Add(7)
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.take(t, true), "\n"); got != "linkerd.requests:7|c" {
		t.Fatalf("sent %q at close; want linkerd.requests:7|c", got)
	}
	if err := tm.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	reg.Scope().Counter("requests").Inc()
	time.Sleep(20 * time.Millisecond)
	if got := s.take(t, false); len(got) != 0 {
		t.Fatalf("sent %q after close", got)
	}
}

// The process context ending stops the exporter too, after a last flush.
func TestContextEndStops(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	tm, err := start(telemetry.TelemeterEnv{Ctx: ctx, Registry: reg}, options{
		addr: s.addr(), prefix: "", sampleRate: 1, gaugeEvery: time.Hour, flushEvery: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg.Scope().Counter("requests").Add(2)
	cancel()
	select {
	case <-tm.done:
	case <-time.After(5 * time.Second):
		t.Fatal("exporter still running 5 s after the context ended")
	}
	if got := strings.Join(s.take(t, true), "\n"); got != "requests:2|c" {
		t.Fatalf("sent %q; want requests:2|c", got)
	}
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
}

// Gauges go out every gaugeIntervalMs, counters at every (shorter) tick.
func TestGaugeInterval(t *testing.T) {
	s := newSink(t)
	reg := telemetry.NewRegistry()
	reg.Scope().Gauge("g", func() float64 { return 1 })
	c := reg.Scope().Counter("c")
	tm, err := start(telemetry.TelemeterEnv{Registry: reg}, options{
		addr: s.addr(), prefix: "", sampleRate: 1, gaugeEvery: 200 * time.Millisecond, flushEvery: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for time.Since(begin) < time.Second {
		c.Inc()
		time.Sleep(5 * time.Millisecond)
	}
	if err := tm.Close(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(begin)
	s.settle()
	var gauges, counterLines int
	for _, l := range s.lines() {
		switch {
		case l == "g:1|g":
			gauges++
		case strings.HasPrefix(l, "c:"):
			counterLines++
		}
	}
	wantGauges := int(elapsed / (200 * time.Millisecond))
	if gauges < wantGauges-2 || gauges > wantGauges {
		t.Errorf("%d gauge lines in %v; want about %d (every 200 ms)", gauges, elapsed, wantGauges)
	}
	if counterLines < 4*gauges {
		t.Errorf("%d counter lines and %d gauge lines; counters should go out at every 20 ms tick", counterLines, gauges)
	}
}
