package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/storage"
	"github.com/linnet-mesh/linnet/internal/storage/etcd/etcdtest"
	"github.com/linnet-mesh/linnet/internal/storage/storagetest"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
	"github.com/linnet-mesh/linnet/internal/watch"
)

var prefixes atomic.Int64

func openStore(t *testing.T, srv *etcdtest.Server, prefix string) *Store {
	t.Helper()
	s, err := Open(Options{Endpoints: []string{srv.Endpoint()}, PathPrefix: prefix, RequestTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func freshPrefix() string { return fmt.Sprintf("/linnet-test/%d/dtabs", prefixes.Add(1)) }

func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return openStore(t, srv, freshPrefix()) })
}

func TestVersionIsModRevision(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	ctx := context.Background()
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatal(err)
	}
	cli := rawClient(t, srv)
	resp, err := cli.Get(ctx, prefix+"/ns")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw Get: %v %v", resp, err)
	}
	if got := string(resp.Kvs[0].Value); got != "/svc=>/#/io.l5d.fs" {
		t.Fatalf("stored text %q", got)
	}
	v, _ := s.Get(ctx, "ns")
	if want := fmt.Sprint(resp.Kvs[0].ModRevision); string(v.Version) != want {
		t.Fatalf("version %q, want mod_revision %s", v.Version, want)
	}
}

func rawClient(t *testing.T, srv *etcdtest.Server) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 3 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Writes by another etcd client (another namerd, etcdctl) reach observers;
// text that is not a dtab is reported, not dropped.
func TestObservesForeignWrites(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	cli := rawClient(t, srv)
	ctx := context.Background()
	got := make(chan watch.Activity[storage.Observation], 100)
	cancel := s.Observe("ns").Subscribe(func(a watch.Activity[storage.Observation]) { got <- a })
	defer cancel()
	if _, err := cli.Put(ctx, prefix+"/ns", "/a => /b"); err != nil {
		t.Fatal(err)
	}
	await(t, got, func(a watch.Activity[storage.Observation]) bool {
		return a.State == watch.Ok && a.Value != nil && a.Value.Dtab.String() == "/a=>/b"
	})
	if _, err := cli.Put(ctx, prefix+"/ns", "/a => "); err != nil {
		t.Fatal(err)
	}
	a := await(t, got, func(a watch.Activity[storage.Observation]) bool { return a.State == watch.Failed })
	if !strings.Contains(a.Err.Error(), "does not hold a valid dtab") {
		t.Fatalf("error %v", a.Err)
	}
	if names, _ := s.List(ctx); len(names) != 1 || names[0] != "ns" {
		t.Fatalf("List: %q", names)
	}
}

func await[T any](t *testing.T, ch <-chan T, ok func(T) bool) T {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case v := <-ch:
			if ok(v) {
				return v
			}
		case <-timeout:
			t.Fatal("expected value not observed within 10s")
		}
	}
}

// Many concurrent CAS writers through two independent stores (two namerds):
// every acknowledged increment is kept and the final state is the last
// acknowledged write.
func TestCASRaceAcrossStores(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := freshPrefix()
	a, b := openStore(t, srv, prefix), openStore(t, srv, prefix)
	ctx := context.Background()
	if err := a.Create(ctx, "ns", counter(0)); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 15
	var wg sync.WaitGroup
	var acked atomic.Int64
	var last atomic.Int64
	errs := make(chan error, writers)
	for i := range writers {
		s := []*Store{a, b}[i%2]
		wg.Go(func() {
			for done := 0; done < each; {
				cur, err := s.Get(ctx, "ns")
				if err != nil {
					errs <- err
					return
				}
				n := count(cur.Dtab)
				err = s.Update(ctx, "ns", counter(n+1), cur.Version)
				switch {
				case err == nil:
					done++
					acked.Add(1)
					for {
						l := last.Load()
						if int64(n+1) <= l || last.CompareAndSwap(l, int64(n+1)) {
							break
						}
					}
				case !errors.Is(err, storage.ErrVersionMismatch):
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	final, _ := a.Get(ctx, "ns")
	if got := count(final.Dtab); got != writers*each || int64(got) != last.Load() || acked.Load() != writers*each {
		t.Fatalf("final counter %d, last acknowledged %d, acknowledged %d; want %d", got, last.Load(), acked.Load(), writers*each)
	}
}

func counter(n int) dtab.Dtab { return dtab.MustParse(fmt.Sprintf("/count=>/n/%d", n)) }

func count(d dtab.Dtab) int {
	var n int
	fmt.Sscanf(d[0].Dst.Value[1], "%d", &n)
	return n
}

// etcd restarts (clean and crash) lose no acknowledged write, and
// observers resume and see writes made after the restart.
func TestEtcdRestart(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := freshPrefix()
	s := openStore(t, srv, prefix)
	ctx := context.Background()
	got := make(chan watch.Activity[storage.Observation], 100)
	cancel := s.Observe("ns").Subscribe(func(a watch.Activity[storage.Observation]) { got <- a })
	defer cancel()
	if err := s.Put(ctx, "ns", counter(1)); err != nil {
		t.Fatal(err)
	}
	for i, restart := range []func(){srv.Restart, func() { srv.Kill(); srv.Restart() }} {
		restart()
		// Retry: the client reconnects on its own schedule.
		want := counter(i + 2)
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := s.Put(ctx, "ns", want)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Put after restart %d: %v", i, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		await(t, got, func(a watch.Activity[storage.Observation]) bool {
			return a.State == watch.Ok && a.Value != nil && a.Value.Dtab.Equal(want)
		})
	}
	// A store opened after the restarts (a restarted namerd) sees it all.
	s2 := openStore(t, srv, prefix)
	v, err := s2.Get(ctx, "ns")
	if err != nil || count(v.Dtab) != 3 {
		t.Fatalf("after restarts: %v %v", v.Dtab, err)
	}
}

func TestConfig(t *testing.T) {
	var c struct {
		Storage config.Kinded[storage.Config] `yaml:"storage"`
	}
	if err := config.Load([]byte("storage:\n  kind: io.l5d.etcd\n  experimental: true\n  host: 127.0.0.1\n  port: 1\n"), &c); err != nil {
		t.Fatal(err)
	}
	cfg := c.Storage.Value.(*Config)
	if cfg.PathPrefix != "/namerd/dtabs" || cfg.Port != 1 {
		t.Fatalf("config %+v", cfg)
	}
	err := config.Load([]byte("storage:\n  kind: io.l5d.etcd\n  port: 99999\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "storage.port") {
		t.Fatalf("bad port: %v", err)
	}
	err = config.Load([]byte("storage:\n  kind: io.l5d.etcd\n  tls: {}\n"), &c)
	if err == nil || !strings.Contains(err.Error(), "storage.tls.commonName") {
		t.Fatalf("tls without commonName: %v", err)
	}
}

// io.l5d.etcd over TLS with client certificates, configured as namerd.yaml
// would; a client trusting another CA is refused.
func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "etcd")
	server := ca.Issue("etcd-server", "etcd.test", "127.0.0.1")
	client := ca.Issue("namerd-client", "namerd.test")
	srv := etcdtest.StartTLS(t, &etcdtest.TLS{
		CertPath: server.CertPath, KeyPath: server.KeyPath, CAPath: ca.CertPath,
		ClientCAPath: ca.CertPath, ClientCertPath: client.CertPath, ClientKeyPath: client.KeyPath,
	})
	host, port, _ := strings.Cut(srv.Endpoint(), ":")
	load := func(trust, cert, key string) storage.Store {
		var c struct {
			Storage config.Kinded[storage.Config] `yaml:"storage"`
		}
		text := fmt.Sprintf(`storage:
  kind: io.l5d.etcd
  experimental: true
  host: %s
  port: %s
  pathPrefix: %s
  requestTimeoutMs: 2000
  tls:
    commonName: etcd.test
    trustCerts: [%s]
    clientAuth: {certPath: %s, keyPath: %s}
`, host, port, freshPrefix(), trust, cert, key)
		if err := config.Load([]byte(text), &c); err != nil {
			t.Fatal(err)
		}
		s, err := c.Storage.Value.NewStore(storage.Env{Ctx: context.Background()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := context.Background()
	s := load(ca.CertPath, client.CertPath, client.KeyPath)
	if err := s.Create(ctx, "ns", storagetest.Simple); err != nil {
		t.Fatalf("Create over TLS: %v", err)
	}
	if v, err := s.Get(ctx, "ns"); err != nil || !v.Dtab.Equal(storagetest.Simple) {
		t.Fatalf("Get over TLS: %v %v", v, err)
	}

	other := tlstest.NewCA(t, "other")
	if err := load(other.CertPath, client.CertPath, client.KeyPath).Put(ctx, "ns", storagetest.Other); err == nil {
		t.Fatal("a client trusting another CA wrote to etcd")
	}
}
