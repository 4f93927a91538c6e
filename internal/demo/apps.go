// Package demo holds the walkthrough's sample services and the router
// layout `linnet demo` runs on one machine: hello (which calls world
// through the outgoing router, as buoyantio/helloworld does with
// http_proxy), world-v1 ("world") and world-v2 ("earth").
package demo

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/linnet-mesh/linnet/internal/proxy"
)

// World answers "<text> (<ip>)", like helloworld's world service.
func World(text string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s (%s)", text, localIP(r))
	})
}

// Hello answers "Hello (<ip>) <world's answer>!!". It calls
// http://<target>/ through the HTTP proxy at proxyURL (the outgoing
// router) and forwards the l5d-ctx-* headers of the request it serves, so
// that a dtab override sent to the first router reaches every hop.
func Hello(target, proxyURL string) (http.Handler, error) {
	pu, err := url.Parse(proxyURL)
	if err != nil || pu.Host == "" {
		return nil, fmt.Errorf("hello: bad proxy URL %q", proxyURL)
	}
	client := &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(pu), MaxIdleConnsPerHost: 64},
		Timeout:   10 * time.Second,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+target+"/", nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, vs := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "l5d-ctx-") {
				req.Header[k] = vs
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "hello: calling "+target+": "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil || resp.StatusCode != http.StatusOK {
			msg := string(body)
			if e := resp.Header.Get(proxy.HeaderErr); e != "" {
				msg, _ = url.QueryUnescape(e)
			}
			http.Error(w, fmt.Sprintf("hello: %s answered %d: %s", target, resp.StatusCode, msg), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "Hello (%s) %s!!", localIP(r), body)
	}), nil
}

// localIP is the address the request arrived on.
func localIP(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if host, _, err := net.SplitHostPort(a.String()); err == nil {
			return host
		}
	}
	return "127.0.0.1"
}

// App is one running sample service.
type App struct {
	Name string
	Addr string // "127.0.0.1:port"
	srv  *http.Server
	ln   net.Listener
}

// Start serves h on addr ("127.0.0.1:0" for any free port).
func Start(name, addr string, h http.Handler) (*App, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a := &App{Name: name, Addr: ln.Addr().String(), ln: ln,
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// Close stops the app.
func (a *App) Close(ctx context.Context) error { return a.srv.Shutdown(ctx) }
