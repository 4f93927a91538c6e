package admin_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/linnet-mesh/linnet/internal/admin"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"

	_ "github.com/linnet-mesh/linnet/internal/namerd/client"
	_ "github.com/linnet-mesh/linnet/internal/namerd/mesh"
	_ "github.com/linnet-mesh/linnet/internal/namerd/thrift"
)

// delegatorOptions fetches /delegator and returns the attributes of each
// router's <option>, by label, and how long the page took.
func delegatorOptions(t *testing.T, base string) (map[string]map[string]string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(base + "/delegator")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /delegator: %d %v\n%s", resp.StatusCode, err, body)
	}
	opts := map[string]map[string]string{}
	z := html.NewTokenizer(strings.NewReader(string(body)))
	for {
		switch z.Next() {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("parsing /delegator: %v", z.Err())
			}
			return opts, took
		case html.StartTagToken:
			tok := z.Token()
			if tok.Data != "option" {
				continue
			}
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Key] = a.Val
			}
			opts[attrs["value"]] = attrs
		}
	}
}

// wantRemote fails unless the router's option shows namerd's dtab (the
// page's dtab format, one dentry a line) from ns at port, and no error.
func wantRemote(t *testing.T, opts map[string]map[string]string, label, ns string, port int, pretty string) {
	t.Helper()
	o := opts[label]
	from := fmt.Sprintf("namespace %q at /$/inet/127.0.0.1/%d", ns, port)
	if o == nil || o["data-remote-from"] != from || o["data-remote"] != pretty || o["data-remote-err"] != "" {
		t.Errorf("router %s: got %q, want data-remote-from %q and data-remote %q", label, o, from, pretty)
	}
}

// The dtab playground of routers that follow namerd, one per namerd
// interpreter (HTTP, thrift, mesh), against a real namerd on loopback:
// each router's box holds the dtab namerd has for its namespace, labelled
// with namespace and address; a PUT shows on the next load; with namerd
// gone the page still renders at once, with the reason in place of the
// dtab. A router that does not follow namerd has no such box.
func TestDelegatorShowsNamerdDtab(t *testing.T) {
	t.Parallel()
	httpPort, thriftPort, meshPort := linnettest.FreePort(t), linnettest.FreePort(t), linnettest.FreePort(t)
	n := inproc.New(t)
	n.Start(fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    h: /svc => /#/io.l5d.fs
    t: /svc => /#/io.l5d.fs/t | /$/inet/127.0.0.1/1
    m: /svc/* => /srv; /srv => /#/io.l5d.fs
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
- kind: io.l5d.thriftNameInterpreter
  ip: 127.0.0.1
  port: %d
- kind: io.l5d.mesh
  ip: 127.0.0.1
  port: %d
`, httpPort, thriftPort, meshPort))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interp := func(block string) naming.Interpreter {
		return namerdtest.NewInterpreter(t, ctx, block, telemetry.Scope{})
	}
	routers := []admin.RouterInfo{
		{Label: "viaHTTP", Dtab: dtab.MustParse("/host=>/svc"), Interpreter: interp(fmt.Sprintf("  kind: io.l5d.namerd.http\n  dst: /$/inet/127.0.0.1/%d\n  namespace: h\n", httpPort))},
		{Label: "viaThrift", Interpreter: interp(fmt.Sprintf("  kind: io.l5d.namerd\n  dst: /$/inet/127.0.0.1/%d\n  namespace: t\n", thriftPort))},
		{Label: "viaMesh", Interpreter: interp(fmt.Sprintf("  kind: io.l5d.mesh\n  dst: /$/inet/127.0.0.1/%d\n  root: /m\n", meshPort))},
		{Label: "local", Dtab: dtab.MustParse("/svc=>/$/inet/127.0.0.1/1"), Interpreter: naming.NewInterpreter(nil)},
	}
	srv := httptest.NewServer(admin.New(admin.Params{Routers: routers}))
	t.Cleanup(srv.Close)

	opts, took := delegatorOptions(t, srv.URL)
	t.Logf("page with three namerd dtabs in %v", took)
	wantRemote(t, opts, "viaHTTP", "h", httpPort, "/svc => /#/io.l5d.fs;\n")
	wantRemote(t, opts, "viaThrift", "t", thriftPort, "/svc => /#/io.l5d.fs/t | /$/inet/127.0.0.1/1;\n")
	wantRemote(t, opts, "viaMesh", "m", meshPort, "/svc/* => /srv;\n/srv => /#/io.l5d.fs;\n")
	if o := opts["viaHTTP"]; o["data-dtab"] != "/host => /svc;\n" {
		t.Errorf("viaHTTP: the router's own dtab is %q", o["data-dtab"])
	}
	if o := opts["local"]; o == nil || o["data-dtab"] != "/svc => /$/inet/127.0.0.1/1;\n" {
		t.Errorf("local router: %q", o)
	} else if _, has := o["data-remote-from"]; has {
		t.Errorf("a router that does not follow namerd has a namerd box: %q", o)
	}

	namerdtest.PutDtab(t, httpPort, "h", "/svc => /#/io.l5d.fs; /svc/web => /#/io.l5d.fs/web2")
	opts, _ = delegatorOptions(t, srv.URL)
	wantRemote(t, opts, "viaHTTP", "h", httpPort, "/svc => /#/io.l5d.fs;\n/svc/web => /#/io.l5d.fs/web2;\n")

	n.Stop()
	opts, took = delegatorOptions(t, srv.URL)
	if took > 2500*time.Millisecond {
		t.Errorf("with namerd down the page took %v", took)
	}
	for _, label := range []string{"viaHTTP", "viaThrift", "viaMesh"} {
		o := opts[label]
		if o["data-remote"] != "" || !strings.HasPrefix(o["data-remote-err"], "cannot read the dtab from namerd: ") || o["data-remote-from"] == "" {
			t.Errorf("router %s with namerd down: %q", label, o)
		} else {
			t.Logf("%s: %s", label, o["data-remote-err"])
		}
	}
}

// A namerd that accepts connections and never answers holds the page for
// the 2 s limit, not longer; the box says namerd did not answer.
func TestDelegatorNamerdTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var routers []admin.RouterInfo
	for _, kind := range []string{"io.l5d.namerd.http", "io.l5d.namerd"} {
		in := namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: %s\n  dst: /$/inet/127.0.0.1/%d\n  namespace: web\n", kind, port), telemetry.Scope{})
		routers = append(routers, admin.RouterInfo{Label: kind, Interpreter: in})
	}
	in := namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.mesh\n  dst: /$/inet/127.0.0.1/%d\n  root: /web\n", port), telemetry.Scope{})
	routers = append(routers, admin.RouterInfo{Label: "io.l5d.mesh", Interpreter: in})
	srv := httptest.NewServer(admin.New(admin.Params{Routers: routers}))
	t.Cleanup(srv.Close)

	opts, took := delegatorOptions(t, srv.URL)
	if took < 2*time.Second || took > 3*time.Second {
		t.Errorf("with namerd hung the page took %v, want the 2s limit", took)
	}
	for _, r := range routers {
		o := opts[r.Label]
		if !strings.HasPrefix(o["data-remote-err"], "namerd did not answer within 2s") || o["data-remote"] != "" {
			t.Errorf("router %s with namerd hung: %q", r.Label, o)
		} else {
			t.Logf("%s: %s", r.Label, o["data-remote-err"])
		}
	}
}
