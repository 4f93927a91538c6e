package routerd_test

import (
	"errors"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/routerd"
)

// FuzzLoadConfig checks that no linkerd.yaml makes LoadConfig panic, that
// every failure is a *config.Error, and that a loaded config's policies
// can be evaluated.
func FuzzLoadConfig(f *testing.F) {
	for _, rc := range findReferenceConfigs(f) {
		f.Add(rc.text)
	}
	f.Add([]byte("routers:\n- protocol: http\n  servers: [{}]\n  client:\n    kind: io.l5d.static\n    configs:\n    - prefix: /{a}/*\n      tls: {commonName: \"{a}\"}\n"))
	f.Add([]byte(`{"routers": [{"protocol": "h2", "servers": [{"port": 1}], "service": {"responseClassifier": {"kind": "io.l5d.h2.grpc.retryableStatusCodes", "retryableStatusCodes": [14]}}}]}`))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := routerd.LoadConfig(text)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T (%v) is not a *config.Error", err, err)
			}
			return
		}
		name := []string{"$", "io.buoyant.rinet", "443", "x"}
		for _, r := range c.Routers {
			switch v := r.Value.(type) {
			case *routerd.HTTPRouter:
				v.Client.For(name)
				v.Service.For(name)
			case *routerd.H2Router:
				v.Client.For(name)
				v.Service.For(name)
			default:
				t.Fatalf("router value %T", r.Value)
			}
		}
	})
}

// BenchmarkLoadConfig loads the largest reference config (servicemesh.yml:
// eight routers, five namers).
func BenchmarkLoadConfig(b *testing.B) {
	var text []byte
	for _, rc := range findReferenceConfigs(b) {
		if len(rc.text) > len(text) && rc.kind == "linkerd" {
			text = rc.text
		}
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := routerd.LoadConfig(text); err != nil && len(config.AsErrors(err)) == 0 {
			b.Fatal(err)
		}
	}
}
