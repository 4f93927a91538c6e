// Package statsd is the io.l5d.statsd telemeter: it sends the metrics tree
// to a StatsD server (or a DataDog agent's DogStatsD port) over UDP, with
// Linkerd 1's names and line types:
//
//	linkerd.rt.incoming.service.svc.web.requests:3|c|@0.01
//	linkerd.rt.incoming.service.svc.web.request_latency_ms:2|ms|@0.01
//	linkerd.rt.incoming.client._.inet.127_1.8888.connections:1|g
//
// A metric's name is its path in the tree joined with '.', every character
// other than a letter or a digit replaced by '_', empty segments dropped,
// after `prefix` and a dot. Counters are StatsD counters (`|c`), stats
// (histograms) are timers (`|ms`), both carrying `|@sampleRate` when the
// rate is below 1; gauges (`|g`) are sent every gaugeIntervalMs.
//
// Linkerd sent a packet (with probability sampleRate) at every increment,
// from the request path. Linnet does not touch the request path at all:
// requests only bump the registry's atomic counters and histograms, as
// they always do, and one goroutine reads the registry once a second (or
// every gaugeIntervalMs, if shorter) and sends what changed. A counter
// that grew by d sends Binomial(d, sampleRate), exactly the distribution
// of Linkerd's per-increment sampling, in one line; a histogram sends each
// new value (at its bucket's lower bound, exact below 32 and within 6.25%
// above) with the same sampling, at most maxTimerLines per histogram per
// flush (the rate on the line is lowered to match when that cap applies).
// Lines are packed into datagrams of at most MaxPacket bytes. A server
// that is absent costs nothing but the sends: errors are counted in
// statsd/send_errors and logged once per outage.
package statsd

import (
	"errors"
	"log/slog"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// maxFlushInterval is how often counters and histograms are sent, at
// most; gauges are sent every gaugeIntervalMs.
const maxFlushInterval = time.Second

// maxTimerLines caps the timer lines one histogram sends per flush.
const maxTimerLines = 1000

type options struct {
	addr       *net.UDPAddr
	prefix     string
	sampleRate float64
	gaugeEvery time.Duration
	flushEvery time.Duration // 0: min(maxFlushInterval, gaugeEvery)
	rand       *rand.Rand    // nil: randomly seeded
}

// telemeter runs the exporter goroutine, which owns the exporter and its
// socket: it flushes on every tick, and once more when it stops.
type telemeter struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	closeErr error
}

func start(env telemetry.TelemeterEnv, o options) (*telemeter, error) {
	if env.Registry == nil {
		return nil, errors.New("no metrics registry")
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := newClient(o.addr, env.Registry.Scope().Scope("statsd"), log)
	if err != nil {
		return nil, err
	}
	if o.flushEvery <= 0 {
		o.flushEvery = min(maxFlushInterval, o.gaugeEvery)
	}
	e := newExporter(env.Registry, c, o)
	t := &telemeter{stop: make(chan struct{}), done: make(chan struct{})}
	var ctxDone <-chan struct{}
	if env.Ctx != nil {
		ctxDone = env.Ctx.Done()
	}
	log.Info("sending metrics to StatsD", "addr", o.addr.String(), "prefix", o.prefix, "sampleRate", o.sampleRate)
	go t.run(e, o.flushEvery, ctxDone)
	return t, nil
}

func (t *telemeter) run(e *exporter, every time.Duration, ctxDone <-chan struct{}) {
	defer close(t.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			e.flush(now, true)
		case <-t.stop:
			e.flush(time.Now(), false)
			t.closeErr = e.client.close()
			return
		case <-ctxDone:
			e.flush(time.Now(), false)
			t.closeErr = e.client.close()
			return
		}
	}
}

// AdminHandlers implements telemetry.Telemeter: StatsD serves no pages.
func (*telemeter) AdminHandlers() []telemetry.AdminHandler { return nil }

// Close sends what changed since the last flush and closes the socket.
func (t *telemeter) Close() error {
	t.stopOnce.Do(func() { close(t.stop) })
	<-t.done
	return t.closeErr
}

// exporter turns registry changes into StatsD lines.
type exporter struct {
	reg        *telemetry.Registry
	client     *client
	prefix     string
	rate       float64
	rateText   string // "|@0.01", or "" at rate 1
	gaugeEvery time.Duration
	flushEvery time.Duration // the ticker's period (0 when flushed by hand)
	lastGauges time.Time
	rand       *rand.Rand

	// beforeLive, when set (tests), runs between the registry walk and
	// the live histogram snapshots.
	beforeLive func()

	counters   map[string]*counterState
	stats      map[string]*statState
	gaugeNames map[string]string
	line       []byte // scratch
}

type counterState struct {
	name string // StatsD name
	last int64  // value at the last flush
}

// statState remembers what of a histogram was sent. The registry resets
// histograms every roll interval (one minute) and keeps the summary of
// the interval that ended; values are new if they are in neither the
// buckets seen at the last flush nor an interval already accounted for.
type statState struct {
	name   string
	rolled *telemetry.Snapshot // the registry's last-interval summary at the last flush
	live   map[int64]int64     // per-bucket counts of the current interval at the last flush
}

func newExporter(reg *telemetry.Registry, c *client, o options) *exporter {
	r := o.rand
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	e := &exporter{
		reg:        reg,
		client:     c,
		prefix:     o.prefix,
		rate:       o.sampleRate,
		gaugeEvery: o.gaugeEvery,
		flushEvery: o.flushEvery,
		lastGauges: time.Now(),
		rand:       r,
		counters:   map[string]*counterState{},
		stats:      map[string]*statState{},
		gaugeNames: map[string]string{},
	}
	if o.sampleRate < 1 {
		e.rateText = "|@" + formatRate(o.sampleRate)
	}
	return e
}

type statRef struct {
	name   string
	stat   *telemetry.Stat
	rolled *telemetry.Snapshot
}

// flush sends counters and histograms that changed, and the gauges when
// they are due (withGauges and gaugeEvery elapsed).
func (e *exporter) flush(now time.Time, withGauges bool) {
	// Half a tick of slack: a tick that fires a little early must not
	// push the gauges to the next one.
	sendGauges := withGauges && now.Sub(e.lastGauges) >= e.gaugeEvery-e.flushEvery/2
	var gaugeNames map[string]string
	if sendGauges {
		e.lastGauges = now
		gaugeNames = make(map[string]string, len(e.gaugeNames))
	}
	var stats []statRef
	e.reg.Each(func(m telemetry.Metric) {
		switch m.Kind {
		case telemetry.KindCounter:
			e.counter(m.Name, m.Counter.Value())
		case telemetry.KindGauge:
			if sendGauges {
				n, ok := e.gaugeNames[m.Name]
				if !ok {
					n = metricName(e.prefix, m.Name)
				}
				gaugeNames[m.Name] = n
				e.gauge(n, m.Gauge())
			}
		case telemetry.KindStat:
			stats = append(stats, statRef{m.Name, m.Stat, m.Snapshot})
		}
	})
	if sendGauges {
		e.gaugeNames = gaugeNames // forget removed gauges
	}
	if len(stats) > 0 {
		if e.beforeLive != nil {
			e.beforeLive()
		}
		live := make([]telemetry.Snapshot, len(stats))
		for i, s := range stats {
			live[i] = s.stat.Snapshot()
		}
		// A roll between the walk above and the live snapshots would make
		// them look like a shrunken interval: detect it (the registry
		// then holds new summaries) and leave those histograms for the
		// next flush, which sees the roll.
		after := make(map[string]*telemetry.Snapshot, len(stats))
		e.reg.Each(func(m telemetry.Metric) {
			if m.Kind == telemetry.KindStat {
				after[m.Name] = m.Snapshot
			}
		})
		for i, s := range stats {
			if after[s.name] == s.rolled {
				e.stat(s.name, s.rolled, &live[i])
			}
		}
	}
	e.client.flush()
}

func (e *exporter) counter(full string, v int64) {
	c := e.counters[full]
	if c == nil {
		c = &counterState{name: metricName(e.prefix, full)}
		e.counters[full] = c
	}
	d := v - c.last
	c.last = v
	if d <= 0 {
		return
	}
	k := binomial(e.rand, d, e.rate)
	if k == 0 {
		return
	}
	l := append(e.line[:0], c.name...)
	l = append(l, ':')
	l = strconv.AppendInt(l, k, 10)
	l = append(l, "|c"...)
	l = append(l, e.rateText...)
	e.send(l)
}

func (e *exporter) gauge(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	l := e.line[:0]
	if v < 0 {
		// "-5|g" means "decrease by 5" to StatsD: set 0 first, in the
		// same datagram (the client never splits one add).
		l = append(l, name...)
		l = append(l, ":0|g\n"...)
	}
	l = append(l, name...)
	l = append(l, ':')
	l = strconv.AppendFloat(l, v, 'f', -1, 64)
	l = append(l, "|g"...)
	e.send(l)
}

func (e *exporter) stat(full string, rolled, live *telemetry.Snapshot) {
	s := e.stats[full]
	if s == nil {
		s = &statState{name: metricName(e.prefix, full)}
		e.stats[full] = s
	}
	cur := bucketCounts(live)
	delta := map[int64]int64{}
	if rolled != s.rolled {
		// The interval seen last time ended: what it gained since, plus
		// the new interval so far.
		for ub, n := range bucketCounts(rolled) {
			if d := n - s.live[ub]; d > 0 {
				delta[ub] += d
			}
		}
		for ub, n := range cur {
			delta[ub] += n
		}
	} else {
		for ub, n := range cur {
			if d := n - s.live[ub]; d > 0 {
				delta[ub] = d
			}
		}
	}
	s.rolled, s.live = rolled, cur
	var total int64
	ubs := make([]int64, 0, len(delta))
	for ub, n := range delta {
		total += n
		ubs = append(ubs, ub)
	}
	if total == 0 {
		return
	}
	sort.Slice(ubs, func(i, j int) bool { return ubs[i] < ubs[j] })
	rate, rateText := e.rate, e.rateText
	if float64(total)*rate > maxTimerLines {
		rate = maxTimerLines / float64(total)
		rateText = "|@" + formatRate(rate)
	}
	for _, ub := range ubs {
		k := binomial(e.rand, delta[ub], rate)
		if k == 0 {
			continue
		}
		l := append(e.line[:0], s.name...)
		l = append(l, ':')
		l = strconv.AppendInt(l, bucketFloor(ub), 10)
		l = append(l, "|ms"...)
		l = append(l, rateText...)
		for range k {
			e.send(l)
		}
	}
}

func (e *exporter) send(l []byte) {
	e.line = l[:0] // keep the grown scratch
	e.client.add(l)
}

// bucketCounts turns a snapshot's cumulative buckets into counts per
// bucket, keyed by the bucket's upper bound.
func bucketCounts(s *telemetry.Snapshot) map[int64]int64 {
	if s == nil {
		return nil
	}
	out := make(map[int64]int64, len(s.Buckets))
	var prev int64
	for _, b := range s.Buckets {
		out[b.UpperBound] = b.Cumulative - prev
		prev = b.Cumulative
	}
	return out
}

// bucketFloor returns the smallest value of the registry's histogram
// bucket whose largest value is ub: buckets are exact below 16, then 16
// per power of two (see telemetry.Stat). It is the value Linnet's own
// percentiles report for the bucket.
func bucketFloor(ub int64) int64 {
	if ub < 16 {
		return ub
	}
	top := 63 - bits.LeadingZeros64(uint64(ub))
	width := int64(1) << (top - 4)
	return ub - width + 1
}

// metricName is Linkerd's StatsD name for a metric: prefix, a dot, then
// the path with '/' as '.', runs of separators collapsed, and every
// character but ASCII letters and digits replaced by '_' (so names never
// carry ':', '|', '@' or spaces).
func metricName(prefix, full string) string {
	b := make([]byte, 0, len(prefix)+1+len(full))
	if p := trimDots(prefix); p != "" {
		b = append(b, p...)
		b = append(b, '.')
	}
	sep := true // at the start of a segment: drop leading and double separators
	for _, r := range full {
		switch {
		case r == '/':
			if !sep {
				b = append(b, '.')
				sep = true
			}
			continue
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
		sep = false
	}
	if len(b) > 0 && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	return string(b)
}

func trimDots(s string) string {
	for len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// formatRate prints a sample rate in plain decimal ("0.01", never
// "1e-05", which etsy's statsd would read as @1).
func formatRate(r float64) string {
	// Six significant digits: 0.0123456789 is sent as 0.0123457.
	r, _ = strconv.ParseFloat(strconv.FormatFloat(r, 'e', 5, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

var (
	_ telemetry.Telemeter       = (*telemeter)(nil)
	_ telemetry.TelemeterConfig = (*Config)(nil)
)
