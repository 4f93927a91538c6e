// Package presubmit holds repository rules that run as tests (CoreDNS's
// test/presubmit_test.go, adapted): the import layering of STYLE.md §3,
// the quarantine of heavy dependencies, and file naming.
package presubmit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/linnet-mesh/linnet"

// pkgInfo is the part of `go list -json` we read.
type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decoding go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s: %v", dir, err)
	}
	return dir
}

func rel(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, module), "/") }

// leaves may import nothing internal (STYLE.md §3, layer L0).
var leaves = []string{"internal/dtab", "internal/watch", "internal/config", "internal/clock"}

// quarantine maps a heavy third-party module prefix to the package path
// prefixes allowed to import it directly (STYLE.md §3 rule 2).
// scripts/memfloor links client-go and the etcd client on purpose: it
// measures the resident memory they cost a process (docs/performance.md).
var quarantine = map[string][]string{
	"k8s.io/client-go":                    {"internal/namer/k8s", "internal/storage/k8s", "internal/k8s", "scripts/memfloor"},
	"go.etcd.io/etcd/client":              {"internal/storage/etcd", "scripts/memfloor"},
	"github.com/prometheus/client_golang": {"internal/telemetry/prometheus"},
	"golang.org/x/net/http2":              {"internal/proxy/h2"},
	"github.com/apache/thrift":            {"internal/namerd/thrift"},
	"github.com/hashicorp/consul":         {"internal/consul", "internal/namer/consul", "internal/storage/consul"},
	"github.com/go-zookeeper/zk":          {"internal/zk", "internal/storage/zk", "internal/namer/serversets"},
}

func TestImportLayers(t *testing.T) {
	for _, p := range listPackages(t) {
		me := rel(p.ImportPath)
		for _, imp := range p.Imports {
			internal := strings.HasPrefix(imp, module+"/")
			for _, leaf := range leaves {
				if me == leaf && internal {
					t.Errorf("%s is a leaf package but imports %s", me, rel(imp))
				}
			}
			if me == "internal/proxy/http1" && rel(imp) == "internal/proxy/h2" ||
				me == "internal/proxy/h2" && rel(imp) == "internal/proxy/http1" {
				t.Errorf("%s imports its sibling %s; shared code belongs in internal/proxy", me, rel(imp))
			}
			if internal && (rel(imp) == "internal/cli" || rel(imp) == "internal/plugins") && me != "cmd/linnet" {
				t.Errorf("%s imports %s; only cmd/linnet may", me, rel(imp))
			}
			for mod, allowed := range quarantine {
				if !strings.HasPrefix(imp, mod) {
					continue
				}
				ok := false
				for _, a := range allowed {
					if me == a || strings.HasPrefix(me, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s, which is quarantined to %v", me, imp, allowed)
				}
			}
		}
	}
}

// TestNoHyphenatedGoFiles keeps file names in the Go habit (CoreDNS's rule).
func TestNoHyphenatedGoFiles(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == ".git" || d.Name() == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".go") && strings.Contains(d.Name(), "-") {
			t.Errorf("%s: Go file names use underscores, not hyphens", strings.TrimPrefix(path, root+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGofmt fails when a Go file is not gofmt-formatted.
func TestGofmt(t *testing.T) {
	cmd := exec.Command("gofmt", "-l", ".")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gofmt: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line := sc.Text(); !strings.Contains(line, "/testdata/") {
			t.Errorf("not gofmt-formatted: %s", line)
		}
	}
}

// notLinked are packages the linnet binary must not link, with why. Every
// package linked into the binary runs its init in every process, router
// included, and the pages that init touches stay resident (issue 3's memory
// goal; docs/performance.md, "Memory").
var notLinked = map[string]string{
	// The generated clientsets import k8s.io/client-go/kubernetes/scheme,
	// which registers every built-in API group: 14 MB of binary and about
	// 9 MB of resident memory. internal/k8s uses client-go's REST client
	// over a scheme of the three groups it reads.
	"k8s.io/client-go/kubernetes": "use internal/k8s's REST resources, not generated clientsets",
	"k8s.io/api/apps/":            "only core, discovery and networking are read",
}

func TestBinaryLinksNoClientset(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", module+"/cmd/linnet")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("go list -deps found only %d packages", len(deps))
	}
	for _, d := range deps {
		for prefix, why := range notLinked {
			if strings.HasPrefix(d, prefix) {
				t.Errorf("cmd/linnet links %s: %s", d, why)
			}
		}
	}
}

// TestSlimBuild builds linnet with -tags linnet_slim (make build-slim) and
// checks that it links neither client-go, etcd, Consul, ZooKeeper nor gRPC, and that it refuses
// their kinds with a message that names the build, not a bare "unknown".
func TestSlimBuild(t *testing.T) {
	root := repoRoot(t)
	list := exec.Command("go", "list", "-deps", "-tags", "linnet_slim", module+"/cmd/linnet")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps -tags linnet_slim: %v", err)
	}
	for _, d := range strings.Fields(string(out)) {
		if strings.HasPrefix(d, "k8s.io/") || strings.HasPrefix(d, "go.etcd.io/") ||
			strings.HasPrefix(d, "github.com/hashicorp/") || strings.HasPrefix(d, "github.com/go-zookeeper/") ||
			d == "google.golang.org/grpc" {
			t.Errorf("the slim build links %s", d)
		}
	}
	bin := filepath.Join(t.TempDir(), "linnet-slim")
	build := exec.Command("go", "build", "-tags", "linnet_slim", "-o", bin, "./cmd/linnet")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags linnet_slim: %v\n%s", err, out)
	}
	for _, tc := range []struct{ cmd, config, want string }{
		{"router", "routers:\n- protocol: http\n  servers: [{port: 0}]\nnamers:\n- kind: io.l5d.k8s\n", `namers[0].kind: kind "io.l5d.k8s" is a Linkerd 1.x option not supported by this version (this linnet is a slim build`},
		{"router", "routers:\n- protocol: http\n  servers: [{port: 0}]\n  interpreter: {kind: io.l5d.mesh, dst: /$/inet/127.0.0.1/4321}\n", `kind "io.l5d.mesh" is a Linkerd 1.x option not supported by this version (this linnet is a slim build`},
		{"namerd", "storage: {kind: io.l5d.etcd}\ninterfaces: [{kind: io.l5d.httpController, port: 0}]\n", `storage.kind: kind "io.l5d.etcd" is a Linkerd 1.x option not supported by this version (this linnet is a slim build`},
		{"namerd", "storage: {kind: io.l5d.zk, zkAddrs: [{host: 127.0.0.1, port: 2181}]}\ninterfaces: [{kind: io.l5d.httpController, port: 0}]\n", `storage.kind: kind "io.l5d.zk" is a Linkerd 1.x option not supported by this version (this linnet is a slim build`},
		{"router", "routers:\n- protocol: http\n  servers: [{port: 0}]\nnamers:\n- kind: io.l5d.serversets\n  zkAddrs: [{host: 127.0.0.1, port: 2181}]\n", `namers[0].kind: kind "io.l5d.serversets" is a Linkerd 1.x option not supported by this version (this linnet is a slim build`},
		{"router", "routers:\n- protocol: http\n  servers: [{port: 0}]\nnamers:\n- kind: io.l5d.curator\n  experimental: true\n  zkAddrs: [{host: 127.0.0.1, port: 2181}]\n", `namers[0].kind: kind "io.l5d.curator" is a Linkerd 1.x option not supported by this version (this linnet is a slim build`},
	} {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(cfg, []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, tc.cmd, "-validate", cfg)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("slim %s -validate accepted %q:\n%s", tc.cmd, tc.config, out)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("slim %s -validate said:\n%s\nwant it to contain %q", tc.cmd, out, tc.want)
		}
	}
	// The standard kinds still work.
	cfg := filepath.Join(t.TempDir(), "ok.yaml")
	os.WriteFile(cfg, []byte("routers:\n- protocol: http\n  servers: [{port: 0}]\nnamers:\n- kind: io.l5d.fs\n  rootDir: .\n"), 0o644)
	if out, err := exec.Command(bin, "router", "-validate", cfg).CombinedOutput(); err != nil {
		t.Errorf("slim router -validate refused an fs namer: %v\n%s", err, out)
	}
}
