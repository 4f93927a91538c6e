package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// ---- test schema ----

type testPlugin interface{ name() string }

type fsPlugin struct {
	Common
	RootDir string `yaml:"rootDir" config:"required"`
}

type Common struct {
	Prefix       string `yaml:"prefix"`
	Experimental bool   `yaml:"experimental"`
}

func (*fsPlugin) name() string { return "fs" }

type dnsPlugin struct {
	Common
	Refresh int `yaml:"refreshIntervalSeconds"`
}

func (p *dnsPlugin) SetDefaults() { p.Refresh = 5 }
func (*dnsPlugin) name() string   { return "dns" }
func (p *dnsPlugin) Validate() error {
	if p.Refresh <= 0 {
		return FieldError("refreshIntervalSeconds", "must be positive, got %d", p.Refresh)
	}
	return nil
}

func init() {
	Register[testPlugin]("test.fs", func() testPlugin { return &fsPlugin{} })
	Register[testPlugin]("test.dns", func() testPlugin { return &dnsPlugin{} })
	RegisterUnsupported[testPlugin]("test.zk", "test.fs")
}

type server struct {
	IP   string `yaml:"ip"`
	Port int    `yaml:"port"`
}

func (s *server) SetDefaults() { s.IP = "127.0.0.1" }
func (s *server) Validate() error {
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("port %d out of range", s.Port)
	}
	return nil
}

type admin struct {
	Port     int      `yaml:"port"`
	Secure   *bool    `yaml:"secure"`
	Workers  int      `yaml:"workerThreads" config:"unsupported"`
	Patterns []string `yaml:"pathWhitelist"`
}

func (a *admin) SetDefaults() { a.Port = 9990 }

type root struct {
	Admin    admin                `yaml:"admin"`
	Plugins  []Kinded[testPlugin] `yaml:"plugins"`
	One      Kinded[testPlugin]   `yaml:"one"`
	Servers  List[server]         `yaml:"servers"`
	Ratio    float64              `yaml:"ratio"`
	Labels   map[string]string    `yaml:"labels"`
	Anything any                  `yaml:"anything"`
	Small    uint8                `yaml:"small"`
	Ptr      *server              `yaml:"ptr"`
	Skipped  string               `yaml:"-"`
}

func (r *root) SetDefaults() {
	r.One.Kind = "test.dns"
	r.One.Value = &dnsPlugin{Refresh: 5}
}

func (r *root) Validate() error {
	seen := map[int]int{}
	for i, s := range r.Servers {
		if j, dup := seen[s.Port]; dup && s.Port != 0 {
			return FieldError(fmt.Sprintf("servers[%d].port", i), "port %d already used by servers[%d]", s.Port, j)
		}
		seen[s.Port] = i
	}
	return nil
}

func load(t *testing.T, text string) (*root, error) {
	t.Helper()
	var r root
	err := Load([]byte(text), &r)
	return &r, err
}

func TestLoadOK(t *testing.T) {
	r, err := load(t, `
admin:
  port: 9991
  secure: false
plugins:
- kind: test.dns
  prefix: /dns
- kind: test.dns
  refreshIntervalSeconds: 7
servers:
  port: 4140
ratio: 1
labels: {a: b}
anything: {x: [1, two, 3.5, true, null]}
small: 255
ptr: {port: 1}
`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Admin.Port != 9991 || r.Admin.Secure == nil || *r.Admin.Secure {
		t.Errorf("admin = %+v", r.Admin)
	}
	if len(r.Plugins) != 2 || r.Plugins[0].Kind != "test.dns" {
		t.Fatalf("plugins = %+v", r.Plugins)
	}
	if p := r.Plugins[0].Value.(*dnsPlugin); p.Prefix != "/dns" || p.Refresh != 5 {
		t.Errorf("plugins[0] = %+v, want prefix /dns and default refresh 5", p)
	}
	if p := r.Plugins[1].Value.(*dnsPlugin); p.Refresh != 7 {
		t.Errorf("plugins[1].refresh = %d, want 7", p.Refresh)
	}
	if len(r.Servers) != 1 || r.Servers[0].Port != 4140 || r.Servers[0].IP != "127.0.0.1" {
		t.Errorf("servers = %+v, want one server 127.0.0.1:4140", r.Servers)
	}
	if r.Ratio != 1 || r.Labels["a"] != "b" || r.Small != 255 {
		t.Errorf("ratio/labels/small = %v %v %v", r.Ratio, r.Labels, r.Small)
	}
	want := `map[x:[1 two 3.5 true <nil>]]`
	if got := fmt.Sprint(r.Anything); got != want {
		t.Errorf("anything = %s, want %s", got, want)
	}
	if r.One.Kind != "test.dns" {
		t.Errorf("one kept default kind? got %q", r.One.Kind)
	}
	if r.Ptr == nil || r.Ptr.IP != "127.0.0.1" || r.Ptr.Port != 1 {
		t.Errorf("ptr = %+v, want defaulted ip", r.Ptr)
	}
}

func TestDefaultsWhenAbsent(t *testing.T) {
	r, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Admin.Port != 9990 {
		t.Errorf("admin.port = %d, want default 9990", r.Admin.Port)
	}
	if r.Ptr != nil {
		t.Errorf("ptr = %+v, want nil", r.Ptr)
	}
	// A Kinded with a preset kind accepts a block without `kind`.
	r, err = load(t, "one: {refreshIntervalSeconds: 9}")
	if err != nil {
		t.Fatal(err)
	}
	if r.One.Kind != "test.dns" || r.One.Value.(*dnsPlugin).Refresh != 9 {
		t.Errorf("one = %+v", r.One)
	}
}

func TestByteOrderMark(t *testing.T) {
	for _, text := range []string{"\ufeff{\"admin\": {\"port\": 1}}", "\ufeffadmin: {port: 1}\n"} {
		r, err := load(t, text)
		if err != nil || r.Admin.Port != 1 {
			t.Errorf("%q: %+v, %v", text, r.Admin, err)
		}
	}
}

func TestJSON(t *testing.T) {
	r, err := load(t, ` {"admin": {"port": 1234}, "plugins": [{"kind": "test.dns", "refreshIntervalSeconds": 2}],
  "servers": [{"port": 1}, {"port": 2}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Admin.Port != 1234 || len(r.Servers) != 2 || r.Plugins[0].Value.(*dnsPlugin).Refresh != 2 {
		t.Errorf("got %+v", r)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown key with suggestion", "admin:\n  prot: 1\n", `admin.prot: unknown key "prot"; did you mean "port"? (line 2)`},
		{"unknown key lists known", "admin:\n  zzzzzzz: 1\n", `admin.zzzzzzz: unknown key "zzzzzzz" (known: pathWhitelist, port, secure) (line 2)`},
		{"unknown top key", "\n\nrouterz: []\n", `routerz: unknown key "routerz" (known: admin, anything, labels, one, plugins, ptr, ratio, servers, small) (line 3)`},
		{"duplicate key", "admin:\n  port: 1\n  port: 2\n", `duplicate key "port" (first at line 2) (line 3)`},
		{"type error", "admin:\n  port: abc\n", `admin.port: expected an integer, got a string ("abc") (line 2)`},
		{"quoted non-int", "admin:\n  port: \"8o\"\n", `admin.port: expected an integer, got a string ("8o") (line 2)`},
		{"bool", "admin:\n  secure: yes\n", `admin.secure: expected a boolean (true or false), got a string ("yes") (line 2)`},
		{"map for scalar", "admin:\n  port: {a: 1}\n", `admin.port: expected an integer, got a mapping (line 2)`},
		{"list for map", "admin: [1]\n", `admin: expected a mapping, got a list (line 1)`},
		{"overflow", "small: 256\n", `small: 256 is not a non-negative integer in range (line 1)`},
		{"unsupported key", "admin:\n  workerThreads: 2\n", "admin.workerThreads: `workerThreads` is a Linkerd 1.x option not supported by this version (line 2)"},
		{"unknown kind", "plugins:\n- kind: io.l5d.xyzzy\n", `plugins[0].kind: unknown kind "io.l5d.xyzzy" (known: test.dns, test.fs) (line 2)`},
		{"kind typo", "plugins:\n- kind: test.dsn\n", `plugins[0].kind: unknown kind "test.dsn"; did you mean "test.dns"? (known: test.dns, test.fs) (line 2)`},
		{"unsupported kind", "plugins:\n- kind: test.zk\n", `plugins[0].kind: kind "test.zk" is a Linkerd 1.x option not supported by this version (line 2)`},
		{"missing kind", "plugins:\n- prefix: x\n", "plugins[0]: missing `kind` (known: test.dns, test.fs) (line 2)"},
		{"required", "plugins:\n- kind: test.fs\n", "plugins[0]: missing required key `rootDir` (line 2)"},
		{"key in kinded", "plugins:\n- kind: test.fs\n  rootDir: x\n  rootdir: y\n", `plugins[0].rootdir: unknown key "rootdir"; did you mean "rootDir"? (line 4)`},
		{"field validate", "plugins:\n- kind: test.dns\n  refreshIntervalSeconds: 0\n", `plugins[0].refreshIntervalSeconds: must be positive, got 0 (line 3)`},
		{"plain validate", "ptr:\n  port: 70000\n", `ptr: port 70000 out of range (line 2)`},
		{"cross validate", "servers:\n- port: 1\n- port: 1\n", `servers[1].port: port 1 already used by servers[0] (line 3)`},
		{"syntax", "admin:\n  port: 1\n port: 2\n", `invalid YAML: did not find expected key (line 2)`},
		{"two docs", "admin: {}\n---\nadmin: {}\n", `more than one YAML document; a config file holds exactly one (line 2)`},
		{"json dup", "{\"admin\": {\"port\": 1,\n \"port\": 2}}", `duplicate key "port" (first at line 1) (line 2)`},
		{"json type", "{\"admin\": {\n\"port\": true}}", `admin.port: expected an integer, got a boolean ("true") (line 2)`},
		{"json syntax", "{\"admin\": {\n\"port\": }}", `invalid JSON: invalid character '}' looking for beginning of value (line 2)`},
		{"json trailing", "{}\n{}", `invalid JSON: unexpected data after the top-level value (line 2)`},
		{"json truncated", "{\"admin\": ", `invalid JSON: unexpected end of input (line 1)`},
		{"not a map", "- 1\n", `expected a mapping, got a list (line 1)`},
		{"nan", "ratio: .nan\n", `ratio: .nan is not a finite number (line 1)`},
		{"recursive merge", "a: &a {<<: *a}\n", `document nested too deeply (or a recursive alias) (line 1)`},
		{"recursive alias", "a: &a [*a]\n", `document nested too deeply (or a recursive alias) (line 1)`},
		{"tag", "admin:\n  port: !foo 1\n", `unsupported YAML tag !foo (line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.text)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestSeveralErrors(t *testing.T) {
	_, err := load(t, "admin:\n  prot: 1\n  port: x\nplugins:\n- kind: nope\n")
	es := AsErrors(err)
	if len(es) != 3 {
		t.Fatalf("got %d errors, want 3: %v", len(es), err)
	}
	lines := []int{es[0].Line, es[1].Line, es[2].Line}
	if fmt.Sprint(lines) != "[2 3 5]" {
		t.Errorf("lines = %v, want [2 3 5]", lines)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Path != "admin.prot" {
		t.Errorf("errors.As found %v, want the first error", ce)
	}
}

func TestAliasesAndMerge(t *testing.T) {
	r, err := load(t, `
labels: &l {a: b}
plugins:
- &p {kind: test.dns, refreshIntervalSeconds: 3}
- <<: *p
  prefix: second
`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Labels["a"] != "b" || len(r.Plugins) != 2 {
		t.Fatalf("got %+v", r)
	}
	if p := r.Plugins[1].Value.(*dnsPlugin); p.Refresh != 3 || p.Prefix != "second" {
		t.Errorf("merged plugin = %+v", p)
	}
}

func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	var dst struct {
		A0, A1, A2, A3, A4, A5, A6, A7, A8 any
	}
	err := Load([]byte(b.String()), &dst)
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("err = %v, want a size error", err)
	}
	// Merge keys of empty mappings do not count values; they must still
	// be bounded.
	b.Reset()
	b.WriteString("a0: &a0 {}\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "a%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	err = Load([]byte(b.String()), &root{})
	if err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("err = %v, want a size error", err)
	}
}

func TestRegisterPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	Register[testPlugin]("test.fs", func() testPlugin { return &fsPlugin{} })
}

func TestKindsAndNew(t *testing.T) {
	if got := fmt.Sprint(Kinds[testPlugin]()); got != "[test.dns test.fs]" {
		t.Errorf("Kinds = %s", got)
	}
	k, err := New[testPlugin]("test.dns")
	if err != nil || k.Value.(*dnsPlugin).Refresh != 5 {
		t.Errorf("New = %+v, %v", k, err)
	}
	if _, err := New[testPlugin]("test.zk"); err == nil || !strings.HasSuffix(err.Error(), UnsupportedSuffix) {
		t.Errorf("New(unsupported) err = %v", err)
	}
}

func TestLoadBadDestination(t *testing.T) {
	if err := Load([]byte("{}"), root{}); err == nil {
		t.Error("non-pointer destination accepted")
	}
}
