package k8s

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/storagetest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

var crdOnce sync.Once

// setup returns the shared API server with the DTab CRD installed from
// deploy/kubernetes/dtab-crd.yaml.
func setup(t *testing.T) *k8stest.Server {
	t.Helper()
	srv := k8stest.Shared(t)
	var err error
	crdOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		crd := filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "kubernetes", "dtab-crd.yaml")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var out string
		if out, err = srv.Kubectl(ctx, nil, "apply", "-f", crd); err != nil {
			err = fmt.Errorf("kubectl apply: %v\n%s", err, out)
			return
		}
		if out, err = srv.Kubectl(ctx, nil, "wait", "--for=condition=established", "--timeout=30s", "crd/dtabs.l5d.io"); err != nil {
			err = fmt.Errorf("kubectl wait: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

var nsSeq atomic.Int64

// newNamespace creates a fresh Kubernetes namespace.
func newNamespace(t *testing.T, srv *k8stest.Server) string {
	t.Helper()
	cfg, err := srv.Conn().RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	core, err := typedcorev1.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("dtabs-%d-%d", os.Getpid(), nsSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := core.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestConformance(t *testing.T) {
	srv := setup(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := New(srv.Conn(), newNamespace(t, srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestKubectlProxyConfig runs the store the way namerd.yml configures it
// (host/port of a kubectl proxy), and checks the object format Linkerd's
// namerd reads: kubectl sees the dentries, and an object written with
// kubectl is read back.
func TestKubectlProxyConfig(t *testing.T) {
	srv := setup(t)
	ns := newNamespace(t, srv)
	pc := srv.ProxyConn(t)
	var c struct {
		Storage config.Kinded[storage.Config] `yaml:"storage"`
	}
	text := fmt.Sprintf("storage:\n  kind: io.l5d.k8s\n  experimental: true\n  host: %s\n  port: %d\n  namespace: %s\n", pc.Host, pc.Port, ns)
	if err := config.Load([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	s, err := c.Storage.Value.NewStore(storage.Env{Ctx: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	d := dtab.MustParse("/srv=>/#/io.l5d.k8s/default/http;/host=>/srv;/svc=>/host;/host/world=>/srv/world-v1")
	if err := s.Create(ctx, "default", d); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Kubectl(ctx, nil, "-n", ns, "get", "dtabs.l5d.io", "default", "-o", "jsonpath={.dentries[3].prefix} {.dentries[3].dst}")
	if err != nil || out != "/host/world /srv/world-v1" {
		t.Errorf("kubectl get: %q, %v", out, err)
	}

	obs := s.Observe("written-by-kubectl")
	got := make(chan storage.Observation, 16)
	stop := obs.Subscribe(func(a watch.Activity[storage.Observation]) {
		if a.State == watch.Ok {
			got <- a.Value
		}
	})
	defer stop()
	manifest := fmt.Sprintf(`apiVersion: l5d.io/v1alpha1
kind: DTab
metadata:
  name: written-by-kubectl
  namespace: %s
dentries:
- prefix: /svc
  dst: /#/io.l5d.k8s/default/http
`, ns)
	if out, err := srv.Kubectl(ctx, []byte(manifest), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	for {
		select {
		case o := <-got:
			if o == nil {
				continue
			}
			if o.Dtab.String() != "/svc=>/#/io.l5d.k8s/default/http" {
				t.Fatalf("observed %s", o.Dtab)
			}
			vd, err := s.Get(ctx, "written-by-kubectl")
			if err != nil || !vd.Version.Equal(o.Version) {
				t.Fatalf("Get: %v version %s, observed %s", err, vd.Version, o.Version)
			}
			return
		case <-ctx.Done():
			t.Fatal("the dtab written with kubectl was never observed")
		}
	}
}

func TestInvalidObjects(t *testing.T) {
	srv := setup(t)
	ns := newNamespace(t, srv)
	s, err := New(srv.Conn(), ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, bad := range []string{"Upper", "has/slash", "under_score"} {
		if err := s.Create(ctx, bad, nil); err == nil || !strings.Contains(err.Error(), "not a Kubernetes object name") {
			t.Errorf("Create(%q): %v", bad, err)
		}
	}
	// An object whose dentries do not parse is reported, not dropped.
	manifest := fmt.Sprintf("apiVersion: l5d.io/v1alpha1\nkind: DTab\nmetadata: {name: broken, namespace: %s}\ndentries:\n- {prefix: /svc, dst: '/a & & /b'}\n", ns)
	if out, err := srv.Kubectl(ctx, []byte(manifest), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	if _, err := s.Get(ctx, "broken"); err == nil || !strings.Contains(err.Error(), "dentries[0].dst") {
		t.Errorf("Get(broken): %v", err)
	}
}
