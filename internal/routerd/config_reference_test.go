package routerd_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/linnet-mesh/linnet/internal/config"
	_ "github.com/linnet-mesh/linnet/internal/namer/k8s"
	"github.com/linnet-mesh/linnet/internal/namerd"
	_ "github.com/linnet-mesh/linnet/internal/plugins"
	_ "github.com/linnet-mesh/linnet/internal/proxy/http1"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

// referenceConfig is one config text found under testdata/reference: a
// plain linkerd.yaml, or a data key of a Kubernetes ConfigMap.
type referenceConfig struct {
	name string // file, or file#configmap/key
	text []byte
	kind string // "linkerd" or "namerd"
}

func findReferenceConfigs(t testing.TB) []referenceConfig {
	t.Helper()
	root := filepath.Join("testdata", "reference")
	var out []referenceConfig
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", rel, err)
			}
			if k := classify(doc); k != "" {
				out = append(out, referenceConfig{name: rel, text: b, kind: k})
				continue
			}
			if doc["kind"] != "ConfigMap" {
				continue
			}
			meta, _ := doc["metadata"].(map[string]any)
			data, _ := doc["data"].(map[string]any)
			keys := make([]string, 0, len(data))
			for k := range data {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, key := range keys {
				text, _ := data[key].(string)
				var inner map[string]any
				if yaml.Unmarshal([]byte(text), &inner) != nil {
					continue
				}
				if k := classify(inner); k != "" {
					out = append(out, referenceConfig{name: rel + "#" + meta["name"].(string) + "/" + key, text: []byte(text), kind: k})
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func classify(doc map[string]any) string {
	switch {
	case doc["routers"] != nil:
		return "linkerd"
	case doc["storage"] != nil || doc["interfaces"] != nil:
		return "namerd"
	}
	return ""
}

// referenceRefusals holds, for each reference linkerd config that this
// version cannot run, the exact "not supported by this version" errors
// (e.g. `routers[7].identifier.kind: kind "io.l5d.ingress" is a Linkerd
// 1.x option not supported by this version (line 226)`, servicemesh.yml's
// h2 ingress router, refused until h2 ingress landed). Every other linkerd
// config must load. Update it when support lands.
var referenceRefusals = map[string][]string{}

// namerdReferenceRefusals is referenceRefusals for the namerd configs
// (k8s-daemonset's namerd.yml declared io.l5d.mesh, refused until the gRPC
// interface landed). Every other namerd config must load.
var namerdReferenceRefusals = map[string][]string{}

// namerdReferenceConfigs are the namerd configs found, listed so that a
// new one is noticed.
var namerdReferenceConfigs = []string{
	"handbook-linkerd/namerd.yml#namerd-config/config.yml",
	"linkerd-examples/k8s-daemonset/k8s/namerd.yml#namerd-config/config.yml",
}

func TestReferenceConfigs(t *testing.T) {
	configs := findReferenceConfigs(t)
	var namerdConfigs []string
	seen := map[string]bool{}
	for _, rc := range configs {
		if rc.kind == "namerd" {
			namerdConfigs = append(namerdConfigs, rc.name)
			t.Run(rc.name, func(t *testing.T) {
				var cfg namerd.Config
				err := config.Load(rc.text, &cfg)
				var got []string
				for _, e := range config.AsErrors(err) {
					if !strings.HasSuffix(e.Msg, config.UnsupportedSuffix) {
						t.Errorf("refused for a reason other than an unsupported feature: %v", e)
					}
					got = append(got, e.Error())
				}
				if want := namerdReferenceRefusals[rc.name]; !slices.Equal(got, want) {
					t.Errorf("refusals changed:\n got  %q\n want %q", got, want)
				}
			})
			continue
		}
		seen[rc.name] = true
		t.Run(rc.name, func(t *testing.T) {
			_, err := routerd.LoadConfig(rc.text)
			var got []string
			for _, e := range config.AsErrors(err) {
				if !strings.HasSuffix(e.Msg, config.UnsupportedSuffix) {
					t.Errorf("refused for a reason other than an unsupported feature: %v", e)
				}
				got = append(got, e.Error())
			}
			want := referenceRefusals[rc.name]
			if !slices.Equal(got, want) {
				t.Errorf("refusals changed:\n got  %q\n want %q", got, want)
			}
		})
	}
	for name := range referenceRefusals {
		if !seen[name] {
			t.Errorf("referenceRefusals lists %s, which is not a reference linkerd config", name)
		}
	}
	if !slices.Equal(namerdConfigs, namerdReferenceConfigs) {
		t.Errorf("namerd reference configs:\n got  %q\n want %q", namerdConfigs, namerdReferenceConfigs)
	}
	if len(seen) < 10 {
		t.Errorf("found only %d linkerd reference configs", len(seen))
	}
}
