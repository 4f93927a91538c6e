package thrift_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/namerd/thrift"
	"github.com/linnet-mesh/linnet/internal/naming"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// remoteDtab asks in for namerd's dtab with a deadline of d.
func remoteDtab(in *thrift.Interpreter, d time.Duration) (dtab.Dtab, time.Duration, error) {
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

// The router's io.l5d.namerd interpreter reads the dtab of its namespace
// from a real namerd with the dtab call, sees a PUT, and gives up by its
// deadline when namerd is down or hung.
func TestRemoteDtab(t *testing.T) {
	n := startNamerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newInterpreter(t, ctx, n.thriftPort, "").(*thrift.Interpreter)

	if ns, addr := in.RemoteDtabSource(); ns != "internal" || addr != fmt.Sprintf("/$/inet/127.0.0.1/%d", n.thriftPort) {
		t.Fatalf("RemoteDtabSource: %q %q", ns, addr)
	}
	got, _, err := remoteDtab(in, 5*time.Second)
	if err != nil || got.String() != "/svc=>/#/io.l5d.fs" {
		t.Fatalf("RemoteDtab: %q, %v", got, err)
	}

	// namerd's dtab observer follows the store: a PUT shows within a second.
	want := "/svc=>/#/io.l5d.fs;/svc/web=>/#/io.l5d.fs/web2"
	n.putDtab("internal", want)
	if !linnettest.WaitFor(time.Second, func() bool {
		got, _, err = remoteDtab(in, time.Second)
		return err == nil && got.String() == want
	}) {
		t.Fatalf("RemoteDtab after a PUT: %q, %v", got, err)
	}

	// namerd answers the dtab call for an absent namespace with the empty
	// dtab (no DtabFailure).
	other := newInterpreterNs(t, ctx, n.thriftPort, "nope")
	if got, _, err := remoteDtab(other, 5*time.Second); err != nil || len(got) != 0 {
		t.Fatalf("absent namespace: %q, %v", got, err)
	}

	// namerd down: the dial fails at once.
	n.Stop()
	if got, took, err := remoteDtab(in, 2*time.Second); err == nil || took > 2500*time.Millisecond {
		t.Fatalf("namerd down: %q, %v after %v", got, err, took)
	}
	// namerd hung (accepts, never answers): the mux handshake is cut at
	// the deadline, not after its own 10 s.
	hung := newInterpreterNs(t, ctx, silentPort(t), "internal")
	if got, took, err := remoteDtab(hung, 300*time.Millisecond); err == nil || took > time.Second {
		t.Fatalf("namerd hung: %q, %v after %v", got, err, took)
	} else {
		t.Logf("hung namerd: %v after %v", err, took)
	}
	// Nor does it wait for a bind poll that is stuck in the handshake
	// (for 10 s) on the same session.
	hung2 := newInterpreterNs(t, ctx, silentPort(t), "internal")
	stop := hung2.Bind(nil, dtab.MustParsePath("/svc/web")).Subscribe(func(watch.Activity[naming.BoundTree]) {})
	defer stop()
	time.Sleep(100 * time.Millisecond) // the poll dials and starts the handshake
	if got, took, err := remoteDtab(hung2, 300*time.Millisecond); err == nil || took > time.Second {
		t.Fatalf("namerd hung, bind poll dialling: %q, %v after %v", got, err, took)
	}
}

func newInterpreterNs(t *testing.T, ctx context.Context, port int, ns string) *thrift.Interpreter {
	t.Helper()
	return namerdtest.NewInterpreter(t, ctx, fmt.Sprintf("  kind: io.l5d.namerd\n  dst: /$/inet/127.0.0.1/%d\n  namespace: %s\n", port, ns), telemetry.Scope{}).(*thrift.Interpreter)
}
