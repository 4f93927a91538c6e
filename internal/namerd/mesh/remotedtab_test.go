package mesh

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/testutil/linnettest"
)

func newRootInterpreter(t *testing.T, ctx context.Context, port int, root string) *Interpreter {
	t.Helper()
	block := fmt.Sprintf("  kind: io.l5d.mesh\n  dst: /$/inet/127.0.0.1/%d\n  root: %s\n  retry: {baseSeconds: 1, maxSeconds: 1}\n", port, root)
	return namerdtest.NewInterpreter(t, ctx, block, telemetry.Scope{}).(*Interpreter)
}

func remoteDtab(in *Interpreter, d time.Duration) (dtab.Dtab, time.Duration, error) {
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

// The router's io.l5d.mesh interpreter reads the dtab of its root from a
// real namerd with the Delegator's GetDtab, sees a PUT, names an absent
// namespace, and gives up by its deadline when namerd is down or hung.
func TestRemoteDtab(t *testing.T) {
	n := startNamerd(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := newRootInterpreter(t, ctx, n.meshPort, "/default")

	if ns, addr := in.RemoteDtabSource(); ns != "default" || addr != fmt.Sprintf("/$/inet/127.0.0.1/%d", n.meshPort) {
		t.Fatalf("RemoteDtabSource: %q %q", ns, addr)
	}
	got, _, err := remoteDtab(in, 5*time.Second)
	if err != nil || got.String() != baseDtab {
		t.Fatalf("RemoteDtab: %q, %v", got, err)
	}

	// GetDtab reads namerd's store: a PUT shows within a second.
	want := baseDtab + ";/svc/web=>/#/io.l5d.fs/web2"
	n.putDtab("default", want)
	if !linnettest.WaitFor(time.Second, func() bool {
		got, _, err = remoteDtab(in, time.Second)
		return err == nil && got.String() == want
	}) {
		t.Fatalf("RemoteDtab after a PUT: %q, %v", got, err)
	}

	absent := newRootInterpreter(t, ctx, n.meshPort, "/nope")
	if got, _, err := remoteDtab(absent, 5*time.Second); err == nil || !strings.Contains(err.Error(), `namerd has no dtab namespace "nope"`) {
		t.Fatalf("absent namespace: %q, %v", got, err)
	}

	n.Stop()
	if got, took, err := remoteDtab(in, 2*time.Second); err == nil || took > 2500*time.Millisecond {
		t.Fatalf("namerd down: %q, %v after %v", got, err, took)
	} else {
		t.Logf("namerd down: %v after %v", err, took)
	}
	hung := newRootInterpreter(t, ctx, silentPort(t), "/default")
	if got, took, err := remoteDtab(hung, 300*time.Millisecond); err == nil || took > time.Second {
		t.Fatalf("namerd hung: %q, %v after %v", got, err, took)
	} else {
		t.Logf("namerd hung: %v after %v", err, took)
	}
}
