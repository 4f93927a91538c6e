package k8s

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/k8s/k8stest"
)

// TestNamerdOnKubernetes runs `linnet namerd` as namerd.yml configures it:
// dtabs in DTab custom resources, the io.l5d.k8s namer, reached through a
// kubectl proxy. Dtabs written through the namerd API are Kubernetes
// objects, objects written with kubectl are served by the API, versions are
// resourceVersions, and names bind to endpoints.
func TestNamerdOnKubernetes(t *testing.T) {
	srv := k8stest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		var in []byte
		if stdin != "" {
			in = []byte(stdin)
		}
		out, err := srv.Kubectl(ctx, in, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	kubectl("", "apply", "-f", filepath.Join(dir, "dtab-crd.yaml"))
	kubectl("", "wait", "--for=condition=established", "--timeout=30s", "crd/dtabs.l5d.io")
	ns := fmt.Sprintf("namerd-%d-%d", os.Getpid(), runSeq.Add(1))
	kubectl(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Service
metadata: {name: world-v1, namespace: %[1]s}
spec:
  ports: [{name: http, port: 7778, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: world-v1
  namespace: %[1]s
  labels: {kubernetes.io/service-name: world-v1}
addressType: IPv4
ports: [{name: http, port: 7778, protocol: TCP}]
endpoints:
- addresses: [10.9.0.1]
  nodeName: node-a
`, ns), "apply", "-f", "-")

	pc := srv.ProxyConn(t)
	apiPort, adminPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %[1]d}
namers:
- kind: io.l5d.k8s
  experimental: true
  host: %[2]s
  port: %[3]d
storage:
  kind: io.l5d.k8s
  host: %[2]s
  port: %[3]d
  namespace: %[4]s
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: %[5]d
`, adminPort, pc.Host, pc.Port, ns, apiPort)
	cfgPath := filepath.Join(t.TempDir(), "namerd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(linnetBin(t), "namerd", cfgPath)
	var stderr strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	base := "http://127.0.0.1:" + strconv.Itoa(apiPort) + "/api/1/"
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, ctype, body string, hdr ...string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := do("GET", "dtabs", "", "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("namerd API not up (last %d)\nstderr:\n%s", code, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Written through the API → a DTab object.
	walkthrough := "/srv=>/#/io.l5d.k8s/" + ns + "/http;/host=>/srv;/svc=>/host;/host/world=>/srv/world-v1"
	if code, body, _ := do("POST", "dtabs/default", "application/dtab", walkthrough); code != http.StatusNoContent {
		mu.Lock()
		t.Fatalf("POST: %d %s\nstderr:\n%s", code, body, stderr.String())
	}
	if got := kubectl("", "-n", ns, "get", "dtabs.l5d.io", "default", "-o", "jsonpath={.dentries[0].dst}|{.metadata.resourceVersion}"); !strings.HasPrefix(got, "/#/io.l5d.k8s/"+ns+"/http|") {
		t.Errorf("kubectl sees %q", got)
	} else {
		rv := strings.TrimPrefix(got, "/#/io.l5d.k8s/"+ns+"/http|")
		code, body, h := do("GET", "dtabs/default", "", "", "Accept", "application/dtab")
		if code != http.StatusOK || strings.TrimSpace(body) != walkthrough {
			t.Errorf("GET: %d %q", code, body)
		}
		if etag := h.Get("ETag"); etag != base64.StdEncoding.EncodeToString([]byte(rv)) {
			t.Errorf("ETag %q, want base64 of resourceVersion %s", etag, rv)
		}
		// A stale version is refused.
		stale := base64.StdEncoding.EncodeToString([]byte("1"))
		if code, body, _ := do("PUT", "dtabs/default", "application/dtab", "/svc=>/x", "If-Match", stale); code != http.StatusPreconditionFailed {
			t.Errorf("PUT with a stale version: %d %s", code, body)
		}
	}

	// Written with kubectl → served by the API.
	kubectl(fmt.Sprintf("apiVersion: l5d.io/v1alpha1\nkind: DTab\nmetadata: {name: from-kubectl, namespace: %s}\ndentries:\n- {prefix: /svc, dst: /#/io.l5d.k8s/%s/http/world-v1}\n", ns, ns), "apply", "-f", "-")
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, body, _ := do("GET", "dtabs", "", "", "Accept", "application/json")
		if code == http.StatusOK && strings.Contains(body, `"from-kubectl"`) && strings.Contains(body, `"default"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Names bind through the stored dtab and the k8s namer.
	q := url.Values{"path": {"/svc/world"}}
	deadline = time.Now().Add(15 * time.Second)
	for {
		code, body, _ := do("GET", "bind/default?"+q.Encode(), "", "")
		if code == http.StatusOK && strings.Contains(body, "/#/io.l5d.k8s/"+ns+"/http/world-v1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bind: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	q = url.Values{"path": {"/#/io.l5d.k8s/" + ns + "/http/world-v1"}}
	code, body, _ := do("GET", "addr/default?"+q.Encode(), "", "")
	if code != http.StatusOK || !strings.Contains(body, `"ip":"10.9.0.1"`) || !strings.Contains(body, `"port":7778`) || !strings.Contains(body, `"nodeName":"node-a"`) {
		t.Errorf("addr: %d %s", code, body)
	}

	if code, body, _ := do("DELETE", "dtabs/from-kubectl", "", ""); code != http.StatusNoContent {
		t.Errorf("DELETE: %d %s", code, body)
	}
	if out, err := srv.Kubectl(ctx, nil, "-n", ns, "get", "dtabs.l5d.io", "from-kubectl"); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("deleted through the API, kubectl still finds it: %v %s", err, out)
	}
}
