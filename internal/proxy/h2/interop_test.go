package h2

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/tlsconf"
	"github.com/linnet-mesh/linnet/internal/tlsconf/tlstest"
)

// interopCases are grpc-go's interop test cases that need no cloud
// credentials or load balancer (PEERS.md: all pass against the interop
// server directly).
var interopCases = []string{
	"empty_unary", "large_unary", "client_streaming", "server_streaming",
	"ping_pong", "empty_stream", "timeout_on_sleeping_server",
	"cancel_after_begin", "cancel_after_first_response",
	"status_code_and_message", "special_status_message", "custom_metadata",
	"unimplemented_method", "unimplemented_service",
}

func toolPath(t *testing.T, name, install string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found in PATH or GOPATH/bin: run scripts/test-deps.sh (%s)", name, install)
	return ""
}

// TestGRPCInteropClient runs grpc-go's own interop client, an independent
// implementation of the gRPC conformance checks, through the proxy (h2c,
// and TLS) to a real gRPC server.
func TestGRPCInteropClient(t *testing.T) {
	if testing.Short() {
		t.Skip("the grpc-go interop client is an external peer (scripts/test-deps.sh installs it)")
	}
	bin := toolPath(t, "grpc-interop-client", "go install google.golang.org/grpc/interop/client, renamed grpc-interop-client")
	svc := newTestService()
	backend := startGRPCBackend(t, svc)
	// Every service, including grpc.testing.UnimplementedService, goes
	// to the one backend.
	plain := newTestProxy(t, map[string]string{"interop": backend}, proxyOpts{ident: staticName("interop")})

	ca := tlstest.NewCA(t, "interop")
	pair := ca.Issue("proxy", "proxy.linkerd.io")
	srvTLS, err := tlsconf.NewServer(tlsconf.ServerOptions{CertPath: pair.CertPath, KeyPath: pair.KeyPath, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	secure := newTestProxy(t, map[string]string{"interop": backend}, proxyOpts{ident: staticName("interop"), serverTLS: srvTLS.Config()})

	for _, mode := range []struct {
		name  string
		addr  string
		extra []string
	}{
		{"h2c", plain.Addr, nil},
		{"tls", secure.Addr, []string{"-use_tls", "-use_test_ca", "-ca_file", ca.CertPath, "-server_host_override", "proxy.linkerd.io"}},
	} {
		host, port, _ := strings.Cut(mode.addr, ":")
		for _, tc := range interopCases {
			t.Run(mode.name+"/"+tc, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				args := append([]string{"-server_host", host, "-server_port", port, "-test_case", tc}, mode.extra...)
				cmd := exec.CommandContext(ctx, bin, args...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("interop client %s: %v\n%s", strconv.Quote(tc), err, out.String())
				}
			})
		}
	}
}
