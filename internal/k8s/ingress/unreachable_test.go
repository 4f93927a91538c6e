package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// TestUnreachableAPI: with no API server, requests are refused with the
// reason, quickly, rather than hanging.
func TestUnreachableAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var cfg struct {
		Identifier config.Kinded[proxy.IdentifierConfig] `yaml:"identifier"`
	}
	if err := config.Load(fmt.Appendf(nil, "identifier:\n  kind: io.l5d.ingress\n  host: 127.0.0.1\n  port: %d\n  syncTimeoutMs: 3000\n", port), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	id, err := cfg.Identifier.Value.NewIdentifier(proxy.IdentifierEnv{Ctx: ctx, DstPrefix: dtab.Path{"svc"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = id.Identify(httptest.NewRequest("GET", "http://www.hello.world/", nil))
	var ue *proxy.UnidentifiedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Fatalf("got %v, want an UnidentifiedError naming the API address", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	// Once the failure is known, later requests fail at once.
	start = time.Now()
	if _, err := id.Identify(httptest.NewRequest("GET", "http://www.hello.world/", nil)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("second request: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("second request took %v", d)
	}
}
