package consul

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namer/consul/consultest"
	"github.com/linnet-mesh/linnet/internal/naming"
)

type namersDoc struct {
	Namers []config.Kinded[naming.NamerConfig] `yaml:"namers"`
}

func load(text string) (*Config, error) {
	var doc namersDoc
	if err := config.Load([]byte(text), &doc); err != nil {
		return nil, err
	}
	return doc.Namers[0].Value.(*Config), nil
}

func TestConfigDefaults(t *testing.T) {
	c, err := load("namers:\n- kind: io.l5d.consul\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "localhost" || c.Port != 8500 || c.IncludeTag || c.UseHealthCheck ||
		!slices.Equal(c.HealthStatuses, []string{"passing"}) || c.Token != "" || c.SetHost ||
		c.ConsistencyMode != "default" || c.FailFast || !c.PreferServiceAddress || c.Weights != nil ||
		c.FixedLengthStreamedAfterKB != 5120 || c.TLS != nil || c.TransferMetadata {
		t.Errorf("defaults: %+v", c)
	}
	nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	n := nm.(*Namer)
	defer n.Close()
	if n.o.Prefix.String() != "/#/io.l5d.consul" || n.o.HealthStatuses != nil || !n.o.PreferServiceAddress {
		t.Errorf("namer options: %+v", n.o)
	}
}

func TestConfigAllKeys(t *testing.T) {
	c, err := load(`namers:
- kind: io.l5d.consul
  prefix: /consul-dc
  host: 127.0.0.1
  port: 18500
  includeTag: true
  useHealthCheck: true
  healthStatuses: [passing, warning]
  token: secret
  setHost: true
  consistencyMode: stale
  failFast: true
  preferServiceAddress: false
  weights:
  - tag: canary
    weight: 0.25
  - tag: canary
    weight: 2
  fixedLengthStreamedAfterKB: 1024
  transferMetadata: true
`)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	n := nm.(*Namer)
	defer n.Close()
	o := n.o
	if o.Prefix.String() != "/#/consul-dc" || !o.IncludeTag || !slices.Equal(o.HealthStatuses, []string{"passing", "warning"}) ||
		o.ConsistencyMode != "stale" || !o.FailFast || o.PreferServiceAddress || o.Weights["canary"] != 2 || !o.TransferMetadata || !o.SetHost {
		t.Errorf("namer options: %+v", o)
	}
}

// The namer built from a config talks to the configured agent.
func TestConfigNamerAgainstAgent(t *testing.T) {
	a := consultest.Shared(t)
	c, err := load("namers:\n- kind: io.l5d.consul\n  host: 127.0.0.1\n  port: " + strconv.Itoa(a.Port()) + "\n  useHealthCheck: true\n")
	if err != nil {
		t.Fatal(err)
	}
	nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	n := nm.(*Namer)
	defer n.Close()
	a.Register(t, consultest.Service{ID: "cfg-1", Name: "cfg", Address: "127.0.0.71", Port: 8081, TTL: "10m"})
	defer a.Deregister(t, "cfg-1")
	w := watchLookup(t, n, "/.local/cfg")
	w.await(t, "/#/io.l5d.consul/.local/cfg / []") // useHealthCheck: critical is left out
	a.Check(t, "cfg-1", "pass")
	w.await(t, "/#/io.l5d.consul/.local/cfg / [127.0.0.71:8081]")
	w.stop()
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"  port: 0\n", "namers[0].port: 0 is not a TCP port"},
		{"  port: http\n", "namers[0].port"},
		{"  host: ''\n", "namers[0].host: must not be empty"},
		{"  healthStatuses: [passing, sick]\n", `namers[0].healthStatuses[1]: "sick" is not a Consul health status`},
		{"  healthStatuses: []\n", "namers[0].healthStatuses: must list at least one status"},
		{"  consistencyMode: eventual\n", `namers[0].consistencyMode: "eventual" is not a consistency mode`},
		{"  setHost: maybe\n", "namers[0].setHost"},
		{"  weights: [{tag: canary}]\n", "missing required key `weight`"},
		{"  weights: [{tag: '', weight: 1}]\n", "namers[0].weights[0].tag: must not be empty"},
		{"  weights: [{tag: a, weight: -1}]\n", "namers[0].weights[0].weight: -1 is not a weight"},
		{"  fixedLengthStreamedAfterKB: -1\n", "namers[0].fixedLengthStreamedAfterKB"},
		{"  tls: {}\n", "namers[0].tls.commonName: TLS needs `commonName`"},
		{"  includeTags: true\n", `unknown key "includeTags"; did you mean "includeTag"?`},
	} {
		_, err := load("namers:\n- kind: io.l5d.consul\n" + tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.yaml, err, tc.want)
		}
		var ce *config.Error
		var ces config.Errors
		if err != nil && !errors.As(err, &ce) && !errors.As(err, &ces) {
			t.Errorf("%q: %T is not a config error", tc.yaml, err)
		}
	}
}

// What the namer sends: the ACL token, the consistency mode, the
// datacenter (none for .local) and, after the first answer, a blocking
// index.
func TestRequestOptions(t *testing.T) {
	a := consultest.Shared(t)
	proxy := consultest.NewProxy(t, a)
	a.Register(t, consultest.Service{ID: "ro-1", Name: "reqopts", Address: "127.0.0.99", Port: 8081})
	defer a.Deregister(t, "ro-1")
	for _, mode := range []string{"consistent", "stale", "default"} {
		c, err := load(fmt.Sprintf("namers:\n- kind: io.l5d.consul\n  host: 127.0.0.1\n  port: %d\n  token: s3cret\n  consistencyMode: %s\n", proxy.Port(), mode))
		if err != nil {
			t.Fatal(err)
		}
		nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
		if err != nil {
			t.Fatal(err)
		}
		n := nm.(*Namer)
		before := len(proxy.Requests("/v1/health/service/reqopts"))
		watchLookup(t, n, "/dc1/reqopts").await(t, "/#/io.l5d.consul/dc1/reqopts / [127.0.0.99:8081]")
		watchLookup(t, n, "/.local/reqopts").await(t, "/#/io.l5d.consul/.local/reqopts / [127.0.0.99:8081]")
		a.Register(t, consultest.Service{ID: "ro-2-" + mode, Name: "reqopts", Address: "127.0.0.98", Port: 8082})
		a.Deregister(t, "ro-2-"+mode)
		time.Sleep(100 * time.Millisecond) // the blocking queries return and are made again
		n.Close()
		reqs := proxy.Requests("/v1/health/service/reqopts")[before:]
		var dc1, local, blocking int
		for _, r := range reqs {
			if r.Token != "s3cret" {
				t.Errorf("%s: request without the token: %+v", mode, r)
			}
			_, stale := r.Query["stale"]
			_, consistent := r.Query["consistent"]
			if stale != (mode == "stale") || consistent != (mode == "consistent") {
				t.Errorf("%s: query %v", mode, r.Query)
			}
			switch r.Query.Get("dc") {
			case "dc1":
				dc1++
			case "":
				local++
			default:
				t.Errorf("%s: dc %q", mode, r.Query.Get("dc"))
			}
			if r.Query.Get("index") != "" {
				blocking++
			}
		}
		if dc1 == 0 || local == 0 || blocking == 0 {
			t.Errorf("%s: %d requests for dc1, %d for .local, %d blocking; want some of each: %+v", mode, dc1, local, blocking, reqs)
		}
	}
}
