package namerd_test

import (
	"slices"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/namerd"
	_ "github.com/linnet-mesh/linnet/internal/namerd/mesh"
	_ "github.com/linnet-mesh/linnet/internal/storage/memory"
)

// TestIgnoredInterfaceOptionsWarned checks that the interface options
// namerd accepts but does not apply are named by Warnings, and that the
// same interfaces without them, or with their defaults written out, get
// no warning.
func TestIgnoredInterfaceOptionsWarned(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"mesh h2AccessLog", `storage: {kind: io.l5d.inMemory}
interfaces:
- {kind: io.l5d.httpController}
- {kind: io.l5d.mesh, h2AccessLog: /var/log/namerd-mesh.log, h2AccessLogRollPolicy: daily}
`, []string{"interfaces[1] (io.l5d.mesh): h2AccessLog is not supported yet for the io.l5d.mesh interface; no access log is written"}},
		{"thrift active cache sizes", `storage: {kind: io.l5d.inMemory}
interfaces:
- kind: io.l5d.thriftNameInterpreter
  cache: {bindingCacheActive: 10, addrCacheActive: 20, bindingCacheInactive: 5}
`, []string{"interfaces[0] (io.l5d.thriftNameInterpreter): cache.bindingCacheActive, cache.addrCacheActive are ignored: every observation a router is waiting on is kept (the inactive capacities and TTLs apply)"}},
		{"thrift one active cache size", `storage: {kind: io.l5d.inMemory}
interfaces:
- {kind: io.l5d.thriftNameInterpreter, cache: {addrCacheActive: 20}}
`, []string{"interfaces[0] (io.l5d.thriftNameInterpreter): cache.addrCacheActive is ignored: every observation a router is waiting on is kept (the inactive capacities and TTLs apply)"}},
		{"nothing ignored", `storage: {kind: io.l5d.inMemory}
interfaces:
- {kind: io.l5d.httpController}
- {kind: io.l5d.mesh, port: 4322}
- kind: io.l5d.thriftNameInterpreter
  cache: {bindingCacheActive: 1000, addrCacheActive: 1000, bindingCacheInactive: 5, addrCacheInactiveTTLSecs: 60}
`, nil},
		{"thrift without cache", `storage: {kind: io.l5d.inMemory}
interfaces: [{kind: io.l5d.thriftNameInterpreter}]
`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c namerd.Config
			if err := config.Load([]byte(tt.text), &c); err != nil {
				t.Fatal(err)
			}
			got := namerd.Warnings(&c)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
