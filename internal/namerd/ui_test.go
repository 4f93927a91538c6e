package namerd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the browser binary: $LINNET_CHROMIUM, or chromium on
// PATH (Debian's chromium, installed by scripts/test-deps.sh).
func chromium(t *testing.T) string {
	if b := os.Getenv("LINNET_CHROMIUM"); b != "" {
		return b
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if b, err := exec.LookPath(name); err == nil {
			return b
		}
	}
	t.Fatal("chromium not found: install Debian's chromium (scripts/test-deps.sh) or set LINNET_CHROMIUM")
	return ""
}

// TestPageInChromium loads the namerd page in headless Chromium, checks the
// namespaces and dtabs it shows, resolves a path in the playground and
// saves a screenshot as a test artifact.
func TestPageInChromium(t *testing.T) {
	p := startProcess(t, fsConfig(t))
	adm := "http://" + p.AdminAddr()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser and must not carry a deadline.
	if err := chromedp.Do(ctx, chromedp.Navigate(adm+"/")); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	ctx, cancelT := context.WithTimeout(ctx, 30*time.Second)
	defer cancelT()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("chromium: %s: %v", what, err)
		}
	}
	must("playground", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("playground"))))
	names, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("article.namespace h3 a")).map(a => a.textContent)`))
	must("namespaces", err)
	firstDtab, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`article[data-namespace="default"] pre.dtab`)))
	must("dtab", err)
	dtabInput, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("dtab")))
	must("playground dtab", err)
	must("resolve", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("path"), "/svc/hello"),
		chromedp.Click(chromedp.ID("resolve")),
		chromedp.WaitVisible(chromedp.CSS(`#result[data-state="done"] .t-leaf`)),
	))
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
	must("result", err)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	must("screenshot", err)
	if strings.Join(names, ",") != "default,internal" {
		t.Errorf("namespaces shown: %q", names)
	}
	if strings.TrimSpace(firstDtab) != "/svc => /#/io.l5d.fs;" {
		t.Errorf("dtab shown for default: %q", firstDtab)
	}
	if strings.TrimSpace(dtabInput) != "/svc => /#/io.l5d.fs;" {
		t.Errorf("playground dtab: %q", dtabInput)
	}
	for _, want := range []string{"/#/io.l5d.fs/hello", "127.0.0.1:8080", "127.0.0.1:8081", "/svc => /#/io.l5d.fs"} {
		if !strings.Contains(result, want) {
			t.Errorf("playground result lacks %q:\n%s", want, result)
		}
	}
	path := filepath.Join(t.ArtifactDir(), "namerd-page.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}
