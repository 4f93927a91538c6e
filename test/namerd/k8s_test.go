package namerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/namerd/namerdtest"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

var k8sNamespaces atomic.Int64

// The real binary as namerd with io.l5d.k8s storage (through a kubectl
// proxy, as namerd.yml configures it) passes namerctl's exchanges against a
// real kube-apiserver.
func TestK8sStoreNamerctlExchanges(t *testing.T) {
	srv := k8stest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, file, _, _ := runtime.Caller(0)
	crd := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "kubernetes", "dtab-crd.yaml")
	if out, err := srv.Kubectl(ctx, nil, "apply", "-f", crd); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	if out, err := srv.Kubectl(ctx, nil, "wait", "--for=condition=established", "--timeout=30s", "crd/dtabs.l5d.io"); err != nil {
		t.Fatalf("kubectl wait: %v\n%s", err, out)
	}
	ns := fmt.Sprintf("namerd-e2e-%d-%d", os.Getpid(), k8sNamespaces.Add(1))
	if out, err := srv.Kubectl(ctx, nil, "create", "namespace", ns); err != nil {
		t.Fatalf("kubectl create namespace: %v\n%s", err, out)
	}
	proxy := srv.ProxyConn(t)
	adminPort, apiPort := freePort(t), freePort(t)
	start(t, "namerd", namerdConfig(adminPort, apiPort,
		fmt.Sprintf("  kind: io.l5d.k8s\n  host: %s\n  port: %d\n  namespace: %s", proxy.Host, proxy.Port, ns)), adminPort)
	namerdtest.NamerctlExchanges(t, fmt.Sprintf("http://127.0.0.1:%d", apiPort), "")
}
