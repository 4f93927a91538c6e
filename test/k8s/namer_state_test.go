package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// TestNamerStatePage runs `linnet router` with an io.l5d.k8s namer on a
// real kube-apiserver and reads /namer_state/io.l5d.k8s.json: after a
// request for Host world, the page lists the watched name with its state
// and the informers as synced, and follows the Service's deletion. The
// Service's endpoints are never ready, so the router never connects to
// their (non-loopback) addresses.
func TestNamerStatePage(t *testing.T) {
	srv := k8stest.Shared(t)
	ns := fmt.Sprintf("state-%d-%d", os.Getpid(), runSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %[1]s}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: world, namespace: %[1]s}\nspec:\n  ports: [{name: http, port: 80, targetPort: http}]\n", ns)
	if out, err := srv.Kubectl(ctx, []byte(svc), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	slice(t, srv, ns, "!10.1.0.1")

	pc := srv.ProxyConn(t)
	routerPort, adminPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf(`admin: {ip: 127.0.0.1, port: %d}
namers:
- kind: io.l5d.k8s
  host: %s
  port: %d
routers:
- protocol: http
  dtab: /svc => /#/io.l5d.k8s/%s/http;
  servers: [{ip: 127.0.0.1, port: %d}]
`, adminPort, pc.Host, pc.Port, ns, routerPort)
	cfgPath := filepath.Join(t.TempDir(), "linkerd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	router := exec.Command(linnetBin(t), "router", cfgPath)
	var stderr strings.Builder
	var stderrMu sync.Mutex
	router.Stderr = writerFunc(func(p []byte) (int, error) { stderrMu.Lock(); defer stderrMu.Unlock(); return stderr.Write(p) })
	if err := router.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = router.Process.Kill(); _ = router.Wait() })

	page := "http://127.0.0.1:" + strconv.Itoa(adminPort) + "/namer_state/io.l5d.k8s.json"
	type nameState struct {
		State       string   `json:"state"`
		Addresses   []string `json:"addresses"`
		Subscribers int      `json:"subscribers"`
	}
	var doc struct {
		Prefix    string `json:"prefix"`
		Informers struct {
			Synced bool `json:"synced"`
		} `json:"informers"`
		Names map[string]nameState `json:"names"`
	}
	key := "/" + ns + "/http/world"
	// await polls the page (and sends a request for world) until ok holds.
	await := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		var last string
		for {
			req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(routerPort)+"/", nil)
			req.Host = "world"
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
			if resp, err := http.Get(page); err == nil {
				doc.Names = nil
				if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&doc) == nil && ok() {
					resp.Body.Close()
					return
				}
				last = resp.Status
				resp.Body.Close()
			} else {
				last = err.Error()
			}
			if time.Now().After(deadline) {
				stderrMu.Lock()
				defer stderrMu.Unlock()
				t.Fatalf("%s: page %s still %s %+v after 30s\nstderr:\n%s", what, page, last, doc, stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	await("bound, no ready endpoint", func() bool {
		s, ok := doc.Names[key]
		return ok && s.State == "bound" && len(s.Addresses) == 0 && s.Subscribers > 0
	})
	if doc.Prefix != "/#/io.l5d.k8s" || !doc.Informers.Synced {
		t.Errorf("page = %+v; want prefix /#/io.l5d.k8s, informers synced", doc)
	}

	if out, err := srv.Kubectl(ctx, nil, "-n", ns, "delete", "service/world", "endpointslice/world-1"); err != nil {
		t.Fatalf("kubectl delete: %v\n%s", err, out)
	}
	await("deleted", func() bool { return doc.Names[key].State == "neg" })
}
