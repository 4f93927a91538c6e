package namerd_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/cli"
	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namer/consul"
	"github.com/linnet-mesh/linnet/internal/namerd"
	"github.com/linnet-mesh/linnet/internal/namerd/mesh"
	_ "github.com/linnet-mesh/linnet/internal/plugins"
	"github.com/linnet-mesh/linnet/internal/storage/etcd"
	"github.com/linnet-mesh/linnet/internal/telemetry/statsd"
)

// quotedNamerdYAML quotes its numbers and booleans, as Helm-templated
// ConfigMaps do; namerd 1.x (Jackson) loaded it.
const quotedNamerdYAML = `admin:
  ip: 127.0.0.1
  port: '9991'
  shutdownGraceMs: "3000"
storage:
  kind: io.l5d.etcd
  host: 127.0.0.1
  port: '2379'
  requestTimeoutMs: "2500"
namers:
- kind: io.l5d.consul
  port: "8500"
  includeTag: 'false'
  useHealthCheck: "True"
interfaces:
- kind: io.l5d.httpController
  ip: 127.0.0.1
  port: '4180'
- kind: io.l5d.thriftNameInterpreter
  port: "4100"
  retryBaseSecs: '600'
  retryJitterSecs: '60'
  cache: {bindingCacheInactive: '100', addrCacheInactiveTTLSecs: "300"}
- kind: io.l5d.mesh
  port: ' 4321 '
telemetry:
- kind: io.l5d.statsd
  experimental: 'true'
  port: "8125"
  sampleRate: '0.5'
`

// A namerd.yaml with quoted numbers and booleans in admin, storage,
// namers, interfaces and telemetry loads with the values namerd 1.x read,
// and passes `linnet check`.
func TestQuotedNumbersNamerdYAML(t *testing.T) {
	var c namerd.Config
	if err := config.Load([]byte(quotedNamerdYAML), &c); err != nil {
		t.Fatal(err)
	}
	if c.Admin.Port != 9991 || c.Admin.ShutdownGraceMs != 3000 {
		t.Errorf("admin = %+v", c.Admin)
	}
	if s, ok := c.Storage.Value.(*etcd.Config); !ok || s.Port != 2379 || s.RequestTimeoutMs != 2500 {
		t.Errorf("storage = %#v", c.Storage.Value)
	}
	if n, ok := c.Namers[0].Value.(*consul.Config); !ok || n.Port != 8500 || n.IncludeTag || !n.UseHealthCheck {
		t.Errorf("namer = %#v", c.Namers[0].Value)
	}
	if len(c.Interfaces) != 3 {
		t.Fatalf("interfaces = %+v", c.Interfaces)
	}
	if h := c.Interfaces[0].Value.Common(); h.Addr() != "127.0.0.1:4180" {
		t.Errorf("httpController at %s", h.Addr())
	}
	th, ok := c.Interfaces[1].Value.(*namerd.ThriftInterfaceConfig)
	if !ok || th.Port != 4100 || th.RetryBaseSecs != 600 || th.RetryJitterSecs != 60 || th.Cache == nil ||
		th.Cache.BindingCacheInactive != 100 || th.Cache.AddrCacheInactiveTTLSecs != 300 {
		t.Errorf("thrift interface = %#v (cache %+v)", c.Interfaces[1].Value, th.Cache)
	}
	if m, ok := c.Interfaces[2].Value.(*mesh.InterfaceConfig); !ok || m.Port != 4321 {
		t.Errorf("mesh interface = %#v", c.Interfaces[2].Value)
	}
	if s, ok := c.Telemetry[0].Value.(*statsd.Config); !ok || s.Port != 8125 || s.SampleRate != 0.5 || !s.Experimental {
		t.Errorf("statsd = %#v", c.Telemetry[0].Value)
	}

	path := filepath.Join(t.TempDir(), "namerd.yaml")
	if err := os.WriteFile(path, []byte(quotedNamerdYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errw bytes.Buffer
	if code := cli.Main([]string{"check", path}, strings.NewReader(""), &out, &errw); code != 0 {
		t.Fatalf("linnet check: exit %d, stdout %q, stderr %q", code, out.String(), errw.String())
	}
	if want := path + ": OK (namerd: storage io.l5d.etcd, 3 interfaces, 1 namer"; !strings.Contains(out.String(), want) {
		t.Errorf("linnet check: stdout %q, want %q", out.String(), want)
	}

	// Text that is not a number is refused, naming the key and line.
	bad := strings.Replace(quotedNamerdYAML, `port: "4100"`, `port: "41OO"`, 1)
	err := config.Load([]byte(bad), &c)
	if want := `interfaces[1].port: expected an integer, got a string ("41OO") (line 20)`; err == nil || err.Error() != want {
		t.Errorf("bad port: %v\nwant %s", err, want)
	}
}
