package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namerd"
	_ "github.com/linnet-mesh/linnet/internal/plugins"
	"github.com/linnet-mesh/linnet/internal/routerd"
	"github.com/linnet-mesh/linnet/internal/storage/memory"
)

// worldRule returns the /host/world dentry of d.
func worldRule(t *testing.T, d dtab.Dtab) dtab.NameTree {
	t.Helper()
	var found *dtab.NameTree
	for i := range d {
		if d[i].Prefix.String() == "/host/world" {
			found = &d[i].Dst
		}
	}
	if found == nil {
		t.Fatalf("no /host/world rule in %s", d)
	}
	return *found
}

func TestDtabs(t *testing.T) {
	for _, world := range []string{WorldV1, WorldCanary, WorldV2} {
		d, err := dtab.Parse(Dtab(world))
		if err != nil {
			t.Fatalf("Dtab(%q): %v", world, err)
		}
		if len(d) != 6 {
			t.Errorf("Dtab(%q) has %d rules, want the walkthrough's 5 and www.hello.world", world, len(d))
		}
		if world == WorldCanary {
			tr := worldRule(t, d)
			if tr.Kind != dtab.Union || len(tr.Branches) != 2 ||
				tr.Branches[0].Weight != 9 || tr.Branches[0].Tree.Value.String() != "/srv/world-v1" ||
				tr.Branches[1].Weight != 1 || tr.Branches[1].Tree.Value.String() != "/srv/world-v2" {
				t.Errorf("canary rule is %s, want 9 * /srv/world-v1 & 1 * /srv/world-v2", dtab.ShowTree(tr))
			}
		} else if tr := worldRule(t, d); tr.Kind != dtab.Leaf || tr.Value.String() != world {
			t.Errorf("world rule is %s, want %s", dtab.ShowTree(tr), world)
		}
	}

	dir := t.TempDir()
	canary, all, err := WriteDtabs(dir)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{canary: WorldCanary, all: WorldV2} {
		if filepath.Dir(file) != dir {
			t.Errorf("%s is not in %s", file, dir)
		}
		b, err := os.ReadFile(file)
		if err != nil || string(b) != Dtab(want) {
			t.Errorf("%s = %q, %v; want Dtab(%q)", file, b, err, want)
		}
	}
}

func TestLayoutWithNamerd(t *testing.T) {
	l := Layout{Outgoing: 4140, Incoming: 4141, Admin: 9990, Namerd: 4180, NamerdAdmin: 9991, RootDir: "/tmp/x y/disco"}
	text := l.Config()
	if _, err := routerd.LoadConfig([]byte(text)); err != nil {
		t.Fatalf("router config: %v\n%s", err, text)
	}
	for _, want := range []string{"kind: io.l5d.namerd.http", "dst: /$/inet/127.0.0.1/4180", "namespace: internal", "kind: io.l5d.port\n      port: 4141", "kind: io.l5d.localhost", "port: 9990"} {
		if !strings.Contains(text, want) {
			t.Errorf("router config lacks %q:\n%s", want, text)
		}
	}
	// The routers get every name from namerd: no dtab, no namers.
	for _, unwanted := range []string{"dtab:", "io.l5d.fs", "kind: default"} {
		if strings.Contains(text, unwanted) {
			t.Errorf("router config has %q:\n%s", unwanted, text)
		}
	}

	ntext := l.NamerdConfig()
	var nc namerd.Config
	if err := config.Load([]byte(ntext), &nc); err != nil {
		t.Fatalf("namerd config: %v\n%s", err, ntext)
	}
	if nc.Admin.Port != 9991 || len(nc.Interfaces) != 1 || nc.Interfaces[0].Value.Common().Port != 4180 {
		t.Errorf("namerd listens on admin %d, interfaces %v", nc.Admin.Port, nc.Interfaces)
	}
	if len(nc.Namers) != 1 || nc.Namers[0].Kind != "io.l5d.fs" || !strings.Contains(ntext, `rootDir: "/tmp/x y/disco"`) {
		t.Errorf("namerd namers: %v\n%s", nc.Namers, ntext)
	}
	mc, ok := nc.Storage.Value.(*memory.Config)
	if !ok || mc.Namespaces[Namespace] != Dtab(WorldV1) {
		t.Errorf("namerd storage %T does not seed %q with the walkthrough's dtab:\n%s", nc.Storage.Value, Namespace, ntext)
	}

	cmds := strings.Join(l.NamerdCommands("bin/linnet", "/tmp/a b/canary.dtab", "/tmp/d/world-v2.dtab"), "\n")
	for _, want := range []string{
		"bin/linnet dtab get internal --base-url http://127.0.0.1:4180",
		"bin/linnet dtab update internal '/tmp/a b/canary.dtab' --base-url http://127.0.0.1:4180",
		"bin/linnet dtab update internal /tmp/d/world-v2.dtab --base-url http://127.0.0.1:4180",
		`curl -s -H "Host: www.hello.world" 127.0.0.1:4141`,
	} {
		if !strings.Contains(cmds, want) {
			t.Errorf("namerd commands lack %q:\n%s", want, cmds)
		}
	}
}

func TestLayoutWithoutNamerd(t *testing.T) {
	l := Layout{Outgoing: 4140, Incoming: 4141, Admin: 9990, RootDir: "/tmp/disco"}
	text := l.Config()
	if _, err := routerd.LoadConfig([]byte(text)); err != nil {
		t.Fatalf("router config: %v\n%s", err, text)
	}
	for _, want := range []string{"kind: io.l5d.fs", "kind: default", "/host/world => /srv/world-v1;", "/host/www.hello.world => /srv/hello;", "kind: io.l5d.port", "kind: io.l5d.localhost"} {
		if !strings.Contains(text, want) {
			t.Errorf("router config lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "namerd") {
		t.Errorf("stand-alone config mentions namerd:\n%s", text)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/a.dtab": "/tmp/a.dtab",
		"/tmp/a b":    "'/tmp/a b'",
		"it's":        `'it'\''s'`,
		"":            "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
