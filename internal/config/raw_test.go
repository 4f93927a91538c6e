package config

import (
	"strings"
	"testing"
)

// layered decodes `base` then `over` onto one value, key by key.
type layered struct {
	Result server
}

func (l *layered) UnmarshalConfig(r Raw) error {
	base, _ := r.Get("base")
	over, ok := r.Get("over")
	if !ok {
		return r.Errorf("missing `over`")
	}
	l.Result.SetDefaults()
	if err := base.Decode(&l.Result); err != nil {
		return err
	}
	return over.Decode(&l.Result)
}

type proto interface{ isProto() }
type httpProto struct {
	MaxHeadersKB int `yaml:"maxHeadersKB"`
}

func (*httpProto) isProto() {}

func init() {
	SetKindKey[proto]("protocol")
	Register[proto]("http", func() proto { return &httpProto{} })
	RegisterUnsupported[proto]("thrift")
}

func TestRawLayering(t *testing.T) {
	var dst struct {
		L layered `yaml:"l"`
	}
	if err := Load([]byte("l:\n  base: {ip: 0.0.0.0, port: 1}\n  over: {port: 2}\n"), &dst); err != nil {
		t.Fatal(err)
	}
	if got := dst.L.Result; got.IP != "0.0.0.0" || got.Port != 2 {
		t.Errorf("layered = %+v, want 0.0.0.0:2", got)
	}
	err := Load([]byte("l:\n  base: {ip: 0.0.0.0}\n  over:\n    port: x\n"), &dst)
	if err == nil || err.Error() != `l.over.port: expected an integer, got a string ("x") (line 4)` {
		t.Errorf("err = %v", err)
	}
	err = Load([]byte("l:\n  base: {}\n"), &dst)
	if err == nil || err.Error() != "l: missing `over` (line 2)" {
		t.Errorf("err = %v", err)
	}
}

func TestKindKey(t *testing.T) {
	var dst struct {
		Routers []Kinded[proto] `yaml:"routers"`
	}
	if err := Load([]byte("routers:\n- protocol: http\n  maxHeadersKB: 9\n"), &dst); err != nil {
		t.Fatal(err)
	}
	if dst.Routers[0].Kind != "http" || dst.Routers[0].Value.(*httpProto).MaxHeadersKB != 9 {
		t.Errorf("got %+v", dst.Routers[0])
	}
	for text, want := range map[string]string{
		"routers:\n- protocol: thrift\n":          `routers[0].protocol: protocol "thrift" is a Linkerd 1.x option not supported by this version (line 2)`,
		"routers:\n- protocol: htpt\n":            `routers[0].protocol: unknown protocol "htpt"; did you mean "http"? (known: http) (line 2)`,
		"routers:\n- maxHeadersKB: 1\n":           "routers[0]: missing `protocol` (known: http) (line 2)",
		"routers:\n- protocol: [http]\n":          `routers[0].protocol: expected a string, got a list (line 2)`,
		"routers:\n- protocol: http\n  kind: x\n": `routers[0].kind: unknown key "kind" (known: maxHeadersKB) (line 3)`,
	} {
		err := Load([]byte(text), &dst)
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got  %v\n want %s", text, err, want)
		}
	}
}

func TestRawAccessors(t *testing.T) {
	var dst struct {
		R Raw `yaml:"r"`
	}
	if err := Load([]byte("r:\n  a: [x, y]\n  b: 1\n"), &dst); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(dst.R.Keys(), ","); got != "a,b" {
		t.Errorf("keys = %s", got)
	}
	a, _ := dst.R.Get("a")
	items := a.Items()
	if len(items) != 2 || items[1].Path() != "r.a[1]" || items[1].Line() != 2 {
		t.Errorf("items = %+v", items)
	}
	if s, ok := items[0].Scalar(); !ok || s != "x" {
		t.Errorf("scalar = %q %v", s, ok)
	}
	if dst.R.IsZero() || !dst.R.IsMap() || dst.R.KeyLine("b") != 3 {
		t.Errorf("IsZero/IsMap/KeyLine wrong")
	}
}
