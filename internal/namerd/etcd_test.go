package namerd

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/linnet-mesh/linnet/internal/storage/etcd"
	"github.com/linnet-mesh/linnet/internal/storage/etcd/etcdtest"
	"github.com/linnet-mesh/linnet/internal/telemetry"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// etcd does not say it is unreachable: during an outage a GET of a watched
// namespace waits for etcd at most liveReadBudget, then answers from the
// live copy; an unwatched one gets 503 after coldReadBudget.
func TestEtcdOutageReadsLiveCopy(t *testing.T) {
	srv := etcdtest.Start(t)
	s, err := etcd.Open(etcd.Options{Endpoints: []string{srv.Endpoint()}, PathPrefix: "/namerd/dtabs"})
	if err != nil {
		t.Fatal(err)
	}
	c := NewController(s, nil, telemetry.NewRegistry().Scope(), nil)
	hs := httptest.NewServer(c)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		s.Close()
	})
	base := hs.URL + "/api/1/dtabs/"
	for ns, d := range map[string]string{"watched": "/svc=>/#/io.l5d.fs", "cold": "/a=>/b"} {
		if a := do(t, http.MethodPost, base+ns, d); a.code != http.StatusNoContent {
			t.Fatalf("POST %s: %+v", ns, a)
		}
	}
	before := do(t, http.MethodGet, base+"watched", "")
	if before.code != http.StatusOK || before.etag == "" {
		t.Fatalf("GET before the outage: %+v", before)
	}
	ctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"watched?watch=true", nil)
	req.Header.Set("Accept", "application/dtab")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != before.body {
		t.Fatalf("watch: %q %v", line, err)
	}

	srv.Kill()
	slack := time.Second
	a := do(t, http.MethodGet, base+"watched", "")
	if a.code != http.StatusOK || a.etag != before.etag || a.body != before.body || a.took > liveReadBudget+slack {
		t.Errorf("GET of the watched namespace during the outage: %+v, want 200 %q ETag %s within %v", a, before.body, before.etag, liveReadBudget+slack)
	}
	a = do(t, http.MethodGet, base+"cold", "")
	if a.code != http.StatusServiceUnavailable || !strings.HasPrefix(a.body, `dtab "cold": storage unavailable`) || a.took > coldReadBudget+slack {
		t.Errorf("GET of an unwatched namespace during the outage: %+v, want a 503 naming the namespace within %v", a, coldReadBudget+slack)
	}
}

// clientTLS trusts ca and presents pair, for etcd at etcd.test.
func clientTLS(t *testing.T, caPath string, pair tlstest.Pair) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(pair.CertPath, pair.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "etcd.test", MinVersion: tls.VersionTLS12}
}

// With etcd's authentication on, a namerd whose user (its client
// certificate's CN) may only read the dtabs gets 403 for writes, with etcd's
// reason in the body.
func TestEtcdForbiddenWriteBody(t *testing.T) {
	ca := tlstest.NewCA(t, "etcd")
	server := ca.Issue("etcd-server", "etcd.test", "127.0.0.1")
	root := ca.Issue("root", "root")
	reader := ca.Issue("namerd", "namerd")
	srv := etcdtest.StartTLS(t, &etcdtest.TLS{
		CertPath: server.CertPath, KeyPath: server.KeyPath, CAPath: ca.CertPath,
		ClientCAPath: ca.CertPath, ClientCertPath: root.CertPath, ClientKeyPath: root.KeyPath,
	})
	const prefix = "/namerd/dtabs/"
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, TLS: clientTLS(t, ca.CertPath, root), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := admin.Put(ctx, prefix+"default", "/svc=>/#/io.l5d.fs"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "dtab-reader"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "dtab-reader", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "namerd", "namerd-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "namerd", "dtab-reader"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("setting up etcd's authentication: %v", err)
		}
	}
	s, err := etcd.Open(etcd.Options{Endpoints: []string{srv.Endpoint()}, PathPrefix: prefix, TLS: clientTLS(t, ca.CertPath, reader)})
	if err != nil {
		t.Fatal(err)
	}
	c := NewController(s, nil, telemetry.NewRegistry().Scope(), nil)
	hs := httptest.NewServer(c)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
		s.Close()
	})
	base := hs.URL + "/api/1/dtabs/"
	if a := do(t, http.MethodGet, base+"default", ""); a.code != http.StatusOK || a.body != "/svc=>/#/io.l5d.fs\n" {
		t.Fatalf("GET with read permission: %+v", a)
	}
	for _, c := range []struct{ method, ns string }{
		{http.MethodPut, "default"},
		{http.MethodPost, "other"},
		{http.MethodDelete, "default"},
	} {
		want := fmt.Sprintf(`forbidden: dtab %q: etcd refused the write: etcdserver: permission denied`, c.ns)
		body := ""
		if c.method != http.MethodDelete {
			body = "/a=>/b"
		}
		if a := do(t, c.method, base+c.ns, body); a.code != http.StatusForbidden || a.body != want {
			t.Errorf("%s %s: %d %q, want 403 %q", c.method, c.ns, a.code, a.body, want)
		}
	}
}
