package dnssrv

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/config"
	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/namer/dnssrv/dnsmasqtest"
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
	c, err := load("namers:\n- kind: io.l5d.dnssrv\n  experimental: true\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.RefreshIntervalSeconds != 5 || c.DNSHosts != nil || !c.Experimental {
		t.Errorf("defaults: %+v", c)
	}
	nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	n := nm.(*Namer)
	defer n.Close()
	if n.interval != 5*time.Second || n.prefix.String() != "/#/io.l5d.dnssrv" {
		t.Errorf("namer: interval %v prefix %s", n.interval, n.prefix)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"  refreshIntervalSeconds: 0\n", "namers[0].refreshIntervalSeconds"},
		{"  refreshIntervalSeconds: five\n", "namers[0].refreshIntervalSeconds"},
		{"  dnsHosts: [127.0.0.1:99999]\n", `namers[0].dnsHosts[0]`},
		{"  dnsHosts: [127.0.0.1, 'bad host']\n", `namers[0].dnsHosts[1]`},
		{"  dnsHosts: ['']\n", `namers[0].dnsHosts[0]`},
		{"  dnsServers: [127.0.0.1]\n", "dnsServers"},
	} {
		_, err := load("namers:\n- kind: io.l5d.dnssrv\n  experimental: true\n" + tc.yaml)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.want)
		}
		var ce *config.Error
		if err != nil && !errors.As(err, &ce) {
			t.Errorf("%q: %T is not a *config.Error", tc.yaml, err)
		}
	}
}

func TestServerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"8.8.8.8":        "8.8.8.8:53",
		"127.0.0.1:5353": "127.0.0.1:5353",
		"::1":            "[::1]:53",
		"[::1]":          "[::1]:53",
		"[::1]:5353":     "[::1]:5353",
		"dns.example":    "dns.example:53",
		"dns.example:54": "dns.example:54",
	} {
		if got, err := ServerAddr(in); err != nil || got != want {
			t.Errorf("ServerAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a b", "host:0", "host:x", "-x.example"} {
		if got, err := ServerAddr(bad); err == nil {
			t.Errorf("ServerAddr(%q) = %q, want an error", bad, got)
		}
	}
}

// TestReadmeExample loads the README's namer block, points it at a real
// dnsmasq serving the README's records, and binds the README's name.
func TestReadmeExample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "```yaml\n") + len("```yaml\n")
	end := strings.Index(text[start:], "\nrouters:")
	if start < len("```yaml\n") || end < 0 {
		t.Fatal("README has no yaml example with a namers block")
	}
	c, err := load(text[start : start+end])
	if err != nil {
		t.Fatal(err)
	}
	if c.RefreshIntervalSeconds != 5 || len(c.DNSHosts) != 1 || c.DNSHosts[0] != "127.0.0.1:5353" {
		t.Fatalf("README config: %+v", c)
	}
	// The README's dtab parses.
	dstart := strings.Index(text, "dtab: |\n") + len("dtab: |\n")
	dend := strings.Index(text[dstart:], "  servers:")
	if dstart < len("dtab: |\n") || dend < 0 {
		t.Fatal("README has no dtab")
	}
	if _, err := dtab.Parse(text[dstart : dstart+dend]); err != nil {
		t.Errorf("README dtab: %v", err)
	}
	// The README's records, served by dnsmasq on a free port.
	var flags []string
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[1] == "SRV" { // name SRV priority weight port target
			name, target := strings.TrimSuffix(f[0], "."), strings.TrimSuffix(f[5], ".")
			flags = append(flags, "--srv-host="+name+","+target+","+f[4]+","+f[2]+","+f[3])
		}
	}
	if len(flags) != 3 {
		t.Fatalf("README records: %q", flags)
	}
	dns := dnsmasqtest.Start(t, append(flags, "--local=/example/",
		"--host-record=web-1.example,127.0.0.1", "--host-record=web-2.example,127.0.0.2",
		"--host-record=backup.example,127.0.0.3")...)
	c.DNSHosts = []string{dns.Addr()}
	nm, err := c.NewNamer(naming.Env{Ctx: t.Context()})
	if err != nil {
		t.Fatal(err)
	}
	n := nm.(*Namer)
	defer n.Close()
	l := n.Lookup(dtab.Path{"_http._tcp.hello.example."})
	watchLookup(t, l)
	eventually(t, l, "/#/io.l5d.dnssrv/_http._tcp.hello.example. / [127.0.0.1:8080*10 127.0.0.2:8080*30]")
}
