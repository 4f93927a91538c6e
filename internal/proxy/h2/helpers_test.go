package h2

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// testProxy is an h2 router server on loopback in front of named
// endpoints: the dtab /svc => /#/test routes a name to the static
// namer's entry of the same name.
type testProxy struct {
	Addr   string
	namer  *naming.StaticNamer
	reg    *telemetry.Registry
	router *router.Router
}

type proxyOpts struct {
	ident     proxy.Identifier // default: io.l5d.header.path, 1 segment
	dtabText  string
	clear     bool
	serverTLS *tls.Config // nil: h2c
	clientTLS *tls.Config // nil: h2c to endpoints
	tlsFor    func(*http.Request) (*tls.Config, error)
}

func loopbackAddr(t testing.TB, hostport string) naming.Address {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return naming.Address{Host: host, Port: p, Weight: 1}
}

func newTestProxy(t testing.TB, endpoints map[string]string, o proxyOpts) *testProxy {
	t.Helper()
	names := map[string][]naming.Address{}
	for name, a := range endpoints {
		if a == "" {
			names[name] = nil
			continue
		}
		names[name] = []naming.Address{loopbackAddr(t, a)}
	}
	namer := naming.NewStaticNamer(dtab.Path{"#", "test"}, names)
	interp := naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "test"}, Namer: namer}})
	if o.dtabText == "" {
		o.dtabText = "/svc => /#/test;"
	}
	reg := telemetry.NewRegistry()
	scope := telemetry.RouterScope(reg.Scope(), "h2")
	rt := router.New(router.Params{
		Label:          "h2",
		Dtab:           dtab.MustParse(o.dtabText),
		Interpreter:    interp,
		BindingTimeout: 2 * time.Second,
		Scope:          scope,
		NewTransport: func(string) router.Transport {
			return NewTransport(TransportOptions{TLS: o.clientTLS, TLSFor: o.tlsFor})
		},
	})
	ident := o.ident
	if ident == nil {
		id, err := (&HeaderPathConfig{Header: ":path", Segments: 1}).NewIdentifier(proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}})
		if err != nil {
			t.Fatal(err)
		}
		ident = id
	}
	h := NewHandler(HandlerParams{
		Router:       rt,
		Identifier:   ident,
		ClearContext: o.clear,
		Scope:        telemetry.ServerScope(scope, "127.0.0.1", 0),
		Logger:       testLogger(t),
	})
	srv := NewServer(h, ServerOptions{TLS: o.serverTLS, Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy server: %v", err)
		}
		rt.Close()
	})
	return &testProxy{Addr: ln.Addr().String(), namer: namer, reg: reg, router: rt}
}

func (p *testProxy) counter(name string) int64 {
	var v int64 = -1
	p.reg.Each(func(m telemetry.Metric) {
		if m.Name == name && m.Kind == telemetry.KindCounter {
			v = m.Counter.Value()
		}
	})
	return v
}

// testLogger logs the proxy's debug messages through t when -v is set.
// Handlers can outlive a test by a moment (Close does not wait for
// them); their messages are dropped once the test has finished.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// identifierFunc adapts a function to proxy.Identifier.
type identifierFunc func(*http.Request) (dtab.Path, error)

func (f identifierFunc) Identify(r *http.Request) (dtab.Path, error) { return f(r) }

// staticName identifies every request as /svc/<name>.
func staticName(name string) proxy.Identifier {
	return identifierFunc(func(*http.Request) (dtab.Path, error) { return dtab.Path{"svc", name}, nil })
}

// startH2CBackend serves h on loopback with cleartext HTTP/2 (prior
// knowledge) only, like a real h2c endpoint.
func startH2CBackend(t testing.TB, h http.Handler) string {
	t.Helper()
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protos}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// h2cClient returns an HTTP client speaking h2c with prior knowledge.
func h2cClient() *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &protos, DisableCompression: true}, Timeout: 10 * time.Second}
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
