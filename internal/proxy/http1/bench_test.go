package http1

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/proxy"
	"github.com/linnet-mesh/linnet/internal/router"
	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// cannedTransport answers every request without a network.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
		Body: http.NoBody, ContentLength: 0}, nil
}
func (cannedTransport) CloseIdleConnections() {}

// discardWriter is a reusable http.ResponseWriter.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkIdentifyCachedRoute measures the handler's work for a request
// whose name is already bound: context headers, identification, the
// three cache lookups, header rewriting and the response copy, with the
// network replaced by a canned response.
func BenchmarkIdentifyCachedRoute(b *testing.B) {
	namer := naming.NewStaticNamer(dtab.Path{"#", "b"}, map[string][]naming.Address{
		"hello": {{Host: "127.0.0.1", Port: 1, Weight: 1}},
	})
	reg := telemetry.NewRegistry()
	rt := router.New(router.Params{
		Label:        "b",
		Dtab:         dtab.MustParse("/svc => /#/b"),
		Interpreter:  naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "b"}, Namer: namer}}),
		Scope:        telemetry.RouterScope(reg.Scope(), "b"),
		NewTransport: func(string) router.Transport { return cannedTransport{} },
	})
	defer rt.Close()
	id, _ := (&HeaderTokenConfig{Header: "Host"}).NewIdentifier(proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}})
	h := NewHandler(HandlerParams{Router: rt, Identifier: id, Scope: telemetry.ServerScope(telemetry.RouterScope(reg.Scope(), "b"), "127.0.0.1", 0)})
	req := httptest.NewRequest("GET", "/path?q=1", nil)
	req.Host = "hello"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Header = http.Header{"Accept": {"*/*"}, "User-Agent": {"bench"}}
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkLoopbackRoundTrip is one keep-alive request through a real
// router server to a real backend, all on loopback.
func BenchmarkLoopbackRoundTrip(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer be.Close()
	addr := strings.TrimPrefix(be.URL, "http://")
	host, port, _ := strings.Cut(addr, ":")
	p := 0
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	namer := naming.NewStaticNamer(dtab.Path{"#", "b"}, map[string][]naming.Address{"hello": {{Host: host, Port: p, Weight: 1}}})
	reg := telemetry.NewRegistry()
	rt := router.New(router.Params{
		Label:        "b",
		Dtab:         dtab.MustParse("/svc => /#/b"),
		Interpreter:  naming.NewInterpreter([]naming.MountedNamer{{Prefix: dtab.Path{"#", "b"}, Namer: namer}}),
		Scope:        telemetry.RouterScope(reg.Scope(), "b"),
		NewTransport: func(addr string) router.Transport { return NewClient(addr, TransportOptions{}) },
	})
	defer rt.Close()
	id, _ := (&HeaderTokenConfig{Header: "Host"}).NewIdentifier(proxy.IdentifierEnv{DstPrefix: dtab.Path{"svc"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(NewHandler(HandlerParams{Router: rt, Identifier: id,
		Scope: telemetry.ServerScope(telemetry.RouterScope(reg.Scope(), "b"), "127.0.0.1", 0)}), &http.Server{}, nil)
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Host = "hello"
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
