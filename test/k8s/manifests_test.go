// Package k8s checks deploy/kubernetes against a real kube-apiserver: every
// manifest passes `kubectl apply --dry-run=server` (schema, defaults,
// admission, RBAC escalation rules), and the Linnet configurations embedded
// in its ConfigMaps load.
package k8s

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/routerd"

	// The kinds the manifests use (cmd/linnet links them through plugins).
	_ "github.com/linnet-mesh/linnet/internal/k8s/ingress"
	_ "github.com/linnet-mesh/linnet/internal/namer/k8s"
	_ "github.com/linnet-mesh/linnet/internal/storage/k8s"
	_ "github.com/linnet-mesh/linnet/internal/telemetry/prometheus"
)

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m)) }

const dir = "../../deploy/kubernetes"

func manifests(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("manifests in %s: %v %v", dir, files, err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			out = append(out, f)
		}
	}
	return out
}

func TestManifestsDryRun(t *testing.T) {
	srv := k8stest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The CRD for real: namerd.yaml holds a DTab object.
	if out, err := srv.Kubectl(ctx, nil, "apply", "-f", filepath.Join(dir, "dtab-crd.yaml")); err != nil {
		t.Fatalf("apply CRD: %v\n%s", err, out)
	}
	if out, err := srv.Kubectl(ctx, nil, "wait", "--for=condition=established", "--timeout=30s", "crd/dtabs.l5d.io"); err != nil {
		t.Fatalf("CRD not established: %v\n%s", err, out)
	}
	for _, f := range manifests(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := srv.Kubectl(ctx, nil, "apply", "--dry-run=server", "-f", f)
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
			}
			if !strings.Contains(out, "(server dry run)") {
				t.Errorf("unexpected output:\n%s", out)
			}
		})
	}
	out, err := srv.Kubectl(ctx, nil, "apply", "--dry-run=server", "-k", dir)
	if err != nil {
		t.Fatalf("kubectl apply -k: %v\n%s", err, out)
	}
	// A broken manifest is refused: the check has teeth.
	bad := []byte("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: broken, namespace: default}\nspec:\n  template:\n    spec:\n      containers: []\n")
	if out, err := srv.Kubectl(ctx, bad, "apply", "--dry-run=server", "-f", "-"); err == nil {
		t.Errorf("an invalid DaemonSet passed the dry run:\n%s", out)
	}
}

// configMaps returns the data of every ConfigMap in the manifests, by
// "file/name/key".
func configMaps(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range manifests(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(text))
		for {
			var doc struct {
				Kind     string `yaml:"kind"`
				Metadata struct{ Name string }
				Data     map[string]string `yaml:"data"`
			}
			if err := dec.Decode(&doc); err != nil {
				break
			}
			if doc.Kind == "ConfigMap" {
				for k, v := range doc.Data {
					out[filepath.Base(f)+"/"+doc.Metadata.Name+"/"+k] = v
				}
			}
		}
	}
	return out
}

func TestEmbeddedConfigsLoad(t *testing.T) {
	cms := configMaps(t)
	for _, key := range []string{"linkerd.yaml/l5d-config/config.yaml", "ingress-controller.yaml/l5d-ingress-config/config.yaml"} {
		text, ok := cms[key]
		if !ok {
			t.Errorf("%s: missing", key)
			continue
		}
		if _, err := routerd.LoadConfig([]byte(text)); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	key := "namerd.yaml/namerd-config/config.yml"
	text, ok := cms[key]
	if !ok {
		t.Fatalf("%s: missing", key)
	}
	var c namerd.Config
	if err := config.Load([]byte(text), &c); err != nil {
		t.Errorf("%s: %v", key, err)
	}
}
