package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/client"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest/inproc"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

// newHTTPInterpreter builds io.l5d.namerd.http from router config text, as
// a router does.
func newHTTPInterpreter(t *testing.T, ctx context.Context, port int, ns string) *client.Interpreter {
	t.Helper()
	block := fmt.Sprintf("  kind: io.l5d.namerd.http\n  dst: /$/inet/127.0.0.1/%d\n  namespace: %s\n  retry: {baseSeconds: 1, maxSeconds: 1}\n", port, ns)
	return namerdtest.NewInterpreter(t, ctx, block, telemetry.Scope{}).(*client.Interpreter)
}

func remoteDtab(in *client.Interpreter, d time.Duration) (dtab.Dtab, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	got, err := in.RemoteDtab(ctx)
	return got, time.Since(start), err
}

// silentPort listens on a loopback port that accepts connections and
// never answers, as a hung namerd.
func silentPort(t *testing.T) int {
	t.Helper()
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
	return ln.Addr().(*net.TCPAddr).Port
}

// The router's io.l5d.namerd.http interpreter reads the dtab of its
// namespace from a real namerd (GET /api/1/dtabs/<ns>), sees a PUT at
// once, names an absent namespace, and gives up by its deadline when
// namerd is down or hung.
func TestRemoteDtab(t *testing.T) {
	port := linnettest.FreePort(t)
	n := inproc.New(t)
	n.Start(fmt.Sprintf(`admin: {ip: 127.0.0.1, port: 0}
storage:
  kind: io.l5d.inMemory
  namespaces:
    web: /svc => /#/io.l5d.fs | /$/inet/127.0.0.1/1; /host/* => /svc
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %d
`, port))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newHTTPInterpreter(t, ctx, port, "web")

	if ns, addr := in.RemoteDtabSource(); ns != "web" || addr != fmt.Sprintf("/$/inet/127.0.0.1/%d", port) {
		t.Fatalf("RemoteDtabSource: %q %q", ns, addr)
	}
	got, _, err := remoteDtab(in, 5*time.Second)
	if want := "/svc=>/#/io.l5d.fs | /$/inet/127.0.0.1/1;/host/*=>/svc"; err != nil || got.String() != want {
		t.Fatalf("RemoteDtab: %q, %v; want %q", got, err, want)
	}

	want := "/svc=>0.90*/srv/a & 0.10*/srv/b"
	namerdtest.PutDtab(t, port, "web", "/svc => 0.9*/srv/a & 0.1*/srv/b")
	if got, _, err := remoteDtab(in, 5*time.Second); err != nil || got.String() != want {
		t.Fatalf("RemoteDtab after a PUT: %q, %v; want %q", got, err, want)
	}

	absent := newHTTPInterpreter(t, ctx, port, "nope")
	if got, _, err := remoteDtab(absent, 5*time.Second); err == nil || !strings.Contains(err.Error(), `namerd has no dtab namespace "nope"`) {
		t.Fatalf("absent namespace: %q, %v", got, err)
	}

	n.Stop()
	if got, took, err := remoteDtab(in, 2*time.Second); err == nil || took > 2500*time.Millisecond {
		t.Fatalf("namerd down: %q, %v after %v", got, err, took)
	} else {
		t.Logf("namerd down: %v after %v", err, took)
	}
	hung := newHTTPInterpreter(t, ctx, silentPort(t), "web")
	if got, took, err := remoteDtab(hung, 300*time.Millisecond); err == nil || took > time.Second {
		t.Fatalf("namerd hung: %q, %v after %v", got, err, took)
	}
}
