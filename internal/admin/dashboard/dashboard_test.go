package dashboard

import (
	"context"
	"flag"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite docs/dashboard.png from the browser test")

func adminMux(reg *telemetry.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	Mount(mux)
	mux.Handle("/admin/metrics.json", telemetry.MetricsJSONHandler(reg))
	return mux
}

func TestHandlerRoutes(t *testing.T) {
	srv := httptest.NewServer(adminMux(telemetry.NewRegistry()))
	defer srv.Close()
	for _, tc := range []struct {
		path, ctype string
		code        int
		contains    string
	}{
		{"/", "text/html", 200, `href="delegator"`},
		{"/services", "text/html", 200, "files/dashboard/dashboard.js"},
		{"/?router=outgoing", "text/html", 200, "<canvas"},
		{"/files/dashboard/dashboard.js", "text/javascript", 200, "admin/metrics.json?tree=1"},
		{"/files/dashboard/dashboard.css", "text/css", 200, ".router"},
		{"/files/dashboard/nope.js", "", 404, ""},
		{"/files/dashboard/", "", 404, ""},
		{"/elsewhere", "", 404, ""},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d", tc.path, resp.StatusCode, tc.code)
			continue
		}
		if tc.code == 200 && (!strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.contains)) {
			t.Errorf("%s: content type %q, body lacks %q", tc.path, resp.Header.Get("Content-Type"), tc.contains)
		}
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", resp.StatusCode)
	}
}

// The page must work offline: no asset may load anything from another host.
func TestAssetsAreSelfContained(t *testing.T) {
	remote := regexp.MustCompile(`(?i)(src|href)\s*=\s*["'](https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["']https?:`)
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		if m := remote.Find(b); m != nil {
			t.Errorf("%s refers to a remote resource: %s", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// traffic records router-like metrics into reg until stop is closed.
func traffic(reg *telemetry.Registry, stop <-chan struct{}, wg *sync.WaitGroup) {
	out := telemetry.RouterScope(reg.Scope(), "outgoing")
	in := telemetry.RouterScope(reg.Scope(), "incoming")
	srv := telemetry.NewRequestStats(telemetry.ServerScope(out, "0.0.0.0", 4140))
	inSrv := telemetry.NewRequestStats(telemetry.ServerScope(in, "0.0.0.0", 4141))
	svcs := []*telemetry.RequestStats{
		telemetry.NewRequestStats(telemetry.ServiceScope(out, "/svc/hello")),
		telemetry.NewRequestStats(telemetry.ServiceScope(out, "/svc/world")),
	}
	var clis []*telemetry.RequestStats
	for i, id := range []string{"/#/io.l5d.k8s/default/http/hello", "/#/io.l5d.k8s/default/http/world-v1"} {
		cs := telemetry.ClientScope(out, id)
		clis = append(clis, telemetry.NewRequestStats(cs))
		size := float64(3 + i)
		cs.Gauge(telemetry.LoadBalancerSize, func() float64 { return size })
		cs.Gauge(telemetry.LoadBalancerAvailable, func() float64 { return size - float64(i) })
		cs.Gauge(telemetry.Connections, func() float64 { return size * 2 })
	}
	inCli := telemetry.NewRequestStats(telemetry.ClientScope(in, "/$/inet/127.1/7777"))
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			lat := time.Duration(3+rand.IntN(12)+rand.IntN(2)*rand.IntN(40)) * time.Millisecond
			code, fail := 200, telemetry.FailureKind("")
			if i%50 == 25 { // 2% failures
				code, fail = 503, telemetry.FailureClassified
			}
			k := i % 2
			for _, st := range []*telemetry.RequestStats{srv, svcs[k], clis[k]} {
				st.Observe(lat, code, fail)
			}
			if i%3 == 0 {
				inSrv.Observe(lat/2, 200, "")
				inCli.Observe(lat/3, 200, "")
			}
		}
	}()
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install the Debian package chromium (scripts/test-deps.sh)")
	return ""
}

func TestDashboardInHeadlessChromium(t *testing.T) {
	bin := chromium(t)
	reg := telemetry.NewRegistry()
	reg.SetRollInterval(500 * time.Millisecond)
	telemetry.RegisterProcessGauges(reg.Scope())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	traffic(reg, stop, &wg)
	defer func() { close(stop); wg.Wait() }()
	srv := httptest.NewServer(adminMux(reg))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()

	// The first Run starts the browser; it lives as long as bctx.
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/?interval=400")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	_, err := chromedp.Run(bctx, chromedp.Poll[bool](`(() => {
		const q = s => document.querySelector(s);
		const rps = q('#router-outgoing .rps'), sr = q('#router-outgoing .success-rate'), p99 = q('#router-outgoing .p99');
		return !!(rps && parseFloat(rps.textContent) > 0 && /%$/.test(sr.textContent) && /ms$/.test(p99.textContent));
	})()`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("the page never showed traffic: %v", err)
	}
	grow := 3 * time.Second // let the charts grow
	if *update {
		grow = 25 * time.Second // a fuller picture for the README
	}
	if err := chromedp.Do(bctx, chromedp.Sleep(grow)); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		v, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v
	}
	rps, sr, p99 := text(`#router-outgoing .rps`), text(`#router-outgoing .success-rate`), text(`#router-outgoing .p99`)
	clients, routers := text(`#router-outgoing .clients tbody`), text(`#total-routers`)
	if g := text(`#proc-goroutines`); parseFloat(g) <= 0 {
		t.Errorf("goroutines card %q", g)
	}
	attr, err := chromedp.Run(bctx, chromedp.AttributeValue(`#router-outgoing .router-delegator`, "href"))
	if err != nil {
		t.Fatal(err)
	}
	delegator := attr.Value
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("outgoing: %s req/s, success %s, p99 %s", rps, sr, p99)
	// The traffic makes at most 500 requests/s (fewer on a busy machine).
	if v := parseFloat(rps); v <= 0 || v > 750 {
		t.Errorf("request rate %q, want between 0 and 500/s", rps)
	}
	// 2% of requests fail: at most one per poll window of 50 requests.
	if v := parseFloat(strings.TrimSuffix(sr, "%")); v < 50 || v > 100 {
		t.Errorf("success rate %q, want about 98%%", sr)
	}
	if !strings.HasSuffix(delegator, "delegator?router=outgoing") {
		t.Errorf("delegator link %q", delegator)
	}
	if !strings.Contains(clients, "#/io.l5d.k8s/default/http/world-v1") || !strings.Contains(clients, "4 / 4") && !strings.Contains(clients, "3 / 4") {
		t.Errorf("client table: %q", clients)
	}
	if routers != "2" {
		t.Errorf("routers card %q, want 2", routers)
	}
	// When metrics.json fails, the page says so instead of freezing.
	broken := http.NewServeMux()
	Mount(broken)
	broken.Handle("/admin/metrics.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	bsrv := httptest.NewServer(broken)
	defer bsrv.Close()
	if err := chromedp.Do(bctx, chromedp.Navigate(bsrv.URL+"/?interval=300")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`(() => {
		const s = document.querySelector('#status');
		return s.classList.contains('error') && s.textContent.includes('HTTP 503');
	})()`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("no error shown when metrics.json fails: %v", err)
	}
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("../../../docs/dashboard.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseFloat reads the number at the start of s ("512.3", "98.20%").
func parseFloat(s string) float64 {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	f, _ := strconv.ParseFloat(s[:end], 64)
	return f
}
