// Package telemetrytest provides a scripted, deterministic metric mix for
// exporter golden tests, dashboards and the Grafana board test: two
// routers with servers, services, clients and client×service scopes, the
// way the router records them.
package telemetrytest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/telemetry"
)

// Script records a fixed mix of traffic into reg and rolls the histograms
// so that exporters publish them. Calling it again adds the same traffic.
func Script(reg *telemetry.Registry) {
	root := reg.Scope()
	out := telemetry.RouterScope(root, "outgoing")
	srv := telemetry.NewRequestStats(telemetry.ServerScope(out, "0.0.0.0", 4140))
	svc := telemetry.NewRequestStats(telemetry.ServiceScope(out, "/svc/world"))
	cliScope := telemetry.ClientScope(out, "/%/io.l5d.k8s.daemonset/default/incoming/l5d/#/io.l5d.k8s/default/http/world-v1")
	cli := telemetry.NewRequestStats(cliScope)
	cliSvc := telemetry.NewRequestStats(telemetry.ClientServiceScope(cliScope, "/svc/world"))
	for i := range 40 {
		d := time.Duration(i%10+1) * time.Millisecond
		for _, st := range []*telemetry.RequestStats{srv, svc, cli, cliSvc} {
			st.Observe(d, 200, "")
		}
	}
	for _, st := range []*telemetry.RequestStats{srv, svc, cli, cliSvc} {
		st.Observe(25*time.Millisecond, 503, telemetry.FailureClassified)
		st.Observe(3*time.Millisecond, 0, telemetry.FailureConnect)
	}
	cliScope.Counter(telemetry.Connects).Add(3)
	cliScope.Gauge(telemetry.Connections, func() float64 { return 2 })
	cliScope.Gauge(telemetry.LoadBalancerSize, func() float64 { return 3 })
	cliScope.Gauge(telemetry.LoadBalancerAvailable, func() float64 { return 2 })
	cliScope.Counter(telemetry.FailureAccrualRemovals).Add(1)
	cliScope.Counter(telemetry.FailureAccrualRemovedForMs).Add(5000)
	cliScope.Counter(telemetry.RetriesRequeues).Add(1)
	svcScope := telemetry.ServiceScope(out, "/svc/world")
	svcScope.Counter(telemetry.RetriesTotal).Add(2)
	svcScope.Stat(telemetry.RetriesPerRequest).Add(0)
	svcScope.Gauge(telemetry.RetriesBudget, func() float64 { return 10 })
	srvScope := telemetry.ServerScope(out, "0.0.0.0", 4140)
	srvScope.Gauge(telemetry.Connections, func() float64 { return 1 })
	srvScope.Counter(telemetry.Connects).Add(1)

	in := telemetry.RouterScope(root, "incoming")
	inSrv := telemetry.NewRequestStats(telemetry.ServerScope(in, "0.0.0.0", 4141))
	inCli := telemetry.NewRequestStats(telemetry.ClientScope(in, "/$/inet/127.1/8888"))
	for range 10 {
		inSrv.Observe(2*time.Millisecond, 200, "")
		inCli.Observe(time.Millisecond, 200, "")
	}
	// A histogram that saw nothing in the last interval.
	in.Stat(telemetry.DtabSize)
	// A scope name needing escaping in Prometheus label values.
	telemetry.ServiceScope(in, `/svc/we"ird\name`).Counter(telemetry.Requests).Inc()
	root.Scope("namer", "io.l5d.fs").Counter("lookups").Add(7)
	reg.Roll()
}

// Golden compares got with the file at path, or rewrites the file when
// update is set (tests pass their own -update flag).
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %q\nwant: %q\n(run with -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}
