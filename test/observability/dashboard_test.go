package observability

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: install the Debian package chromium (scripts/test-deps.sh)")
	return ""
}

// browser starts headless Chromium; the returned context drives one tab.
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-quic", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	return bctx
}

// keepTraffic sends walkthrough requests (and a few to the broken
// service) until the test ends, about 40 per second.
func keepTraffic(t *testing.T, w *walkthrough) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			host := "www.hello.world"
			if i%20 == 19 {
				host = "broken"
			}
			w.get(t, host, nil)
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// The dashboard, in a real browser, against the real router carrying
// the walkthrough's traffic: both routers appear with a request rate and
// a success rate. The screenshot goes to the test's artifacts, and to
// docs/dashboard.png with -update.
func TestDashboardShowsRealTraffic(t *testing.T) {
	t.Parallel()
	w := startWalkthrough(t, "")
	keepTraffic(t, w)
	b := browser(t, 90*time.Second)
	if err := chromedp.Do(b, chromedp.Navigate(w.admin+"/?interval=500")); err != nil {
		t.Fatalf("browser: %v", err)
	}
	_, err := chromedp.Run(b, chromedp.Poll[bool](`(() => {
		const q = s => document.querySelector(s);
		const ok = r => { const rps = q('#router-' + r + ' .rps'), sr = q('#router-' + r + ' .success-rate');
			return rps && parseFloat(rps.textContent) > 0 && sr && parseFloat(sr.textContent) > 0 && /%$/.test(sr.textContent); };
		return ok('incoming') && ok('outgoing');
	})()`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		t.Fatalf("the page never showed both routers with traffic: %v\n%s", err, w.stderr)
	}
	grow := 2 * time.Second
	if *update {
		grow = 20 * time.Second // fuller charts for the README picture
	}
	if err := chromedp.Do(b, chromedp.Sleep(grow)); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	for _, r := range []string{"incoming", "outgoing"} {
		rps, sr := text("#router-"+r+" .rps"), text("#router-"+r+" .success-rate")
		t.Logf("%s: %s req/s, success %s", r, rps, sr)
		// About 40 requests/s enter the incoming router, which also sees
		// the second hop (hello → outgoing → incoming → world).
		if v := number(rps); v <= 0 || v > 200 {
			t.Errorf("%s request rate %q", r, rps)
		}
		if v := number(sr); v < 50 || v > 100 {
			t.Errorf("%s success rate %q", r, sr)
		}
		if name := text("#router-" + r + " .router-name"); name != r {
			t.Errorf("router name %q, want %q", name, r)
		}
	}
	if got := text("#total-routers"); got != "2" {
		t.Errorf("routers card %q, want 2", got)
	}
	if clients := text("#router-outgoing .clients tbody"); !strings.Contains(clients, "#/io.l5d.fs/world-v1") {
		t.Errorf("outgoing client table does not list world-v1: %q", clients)
	}
	png, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(png))
	}
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("../../docs/dashboard.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The delegator page of the real router: type a path, press Delegate,
// and the tree shows the bound name it resolves to.
func TestDelegatorPageResolvesPath(t *testing.T) {
	t.Parallel()
	w := startWalkthrough(t, "")
	b := browser(t, 60*time.Second)
	if err := chromedp.Do(b,
		chromedp.Navigate(w.admin+"/delegator?router=outgoing"),
		chromedp.WaitVisible(`#path`),
		chromedp.Clear(`#path`),
		chromedp.SendKeys(`#path`, "/svc/world"),
		chromedp.Click(`#go`),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	// The delegator explains the interpreter's binding; the router's
	// transformers (io.l5d.port here) apply after it, as in Linkerd.
	want := "/#/io.l5d.fs/world-v1"
	if _, err := chromedp.Run(b, chromedp.Poll[bool](`document.querySelector('#out').textContent.includes(`+strconv.Quote(want)+`)`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		out, _ := chromedp.Run(b, chromedp.Text(`#out`))
		t.Fatalf("the delegation never showed %s: %v\npage: %q", want, err, out)
	}
	out, err := chromedp.Run(b, chromedp.Text(`#out`))
	if err != nil {
		t.Fatal(err)
	}
	// The tree explains the way there: the dentry that rewrote the name,
	// and the endpoint the bound name has.
	for _, s := range []string{"(/host/world => /srv/world-v1)", "[bound " + w.apps["world-v1"] + "]"} {
		if !strings.Contains(out, s) {
			t.Errorf("delegation tree lacks %q:\n%s", s, out)
		}
	}
	if png, err := chromedp.Run(b, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(t.ArtifactDir(), "delegator.png"), png, 0o644)
	}
}

// number reads the number at the start of s ("41.5", "97.50%").
func number(s string) float64 {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.') {
		end++
	}
	f, _ := strconv.ParseFloat(s[:end], 64)
	return f
}
