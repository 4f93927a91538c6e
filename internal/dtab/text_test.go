package dtab

import (
	"encoding/json"
	"testing"
)

func TestTextEncoding(t *testing.T) {
	type doc struct {
		Path   Path   `json:"path"`
		Prefix Prefix `json:"prefix"`
		Dtab   Dtab   `json:"dtab"`
	}
	in := `{"path":"/svc/a b","prefix":"/svc/*","dtab":" /svc => /#/io.l5d.fs ; "}`
	var d doc
	if err := json.Unmarshal([]byte(in), &d); err == nil {
		t.Fatalf("a path with a raw space was accepted: %q", []string(d.Path))
	}
	in = `{"path":"/svc/a\\x20b","prefix":"/svc/*","dtab":" /svc => /#/io.l5d.fs ; "}`
	if err := json.Unmarshal([]byte(in), &d); err != nil {
		t.Fatal(err)
	}
	if !d.Path.Equal(Path{"svc", "a b"}) || d.Prefix.String() != "/svc/*" || d.Dtab.String() != "/svc=>/#/io.l5d.fs" {
		t.Fatalf("decoded %+v", d)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"path":"/svc/\\x61\\x20\\x62","prefix":"/svc/*","dtab":"/svc=\u003e/#/io.l5d.fs"}`; string(out) != want {
		t.Errorf("encoded %s, want %s", out, want)
	}
	var bad Dtab
	if err := bad.UnmarshalText([]byte("/a => /b;;")); err == nil || err.Error() != `'/' expected but ';' found at '/a => /b;[;]'` {
		t.Errorf("UnmarshalText error %v", err)
	}
	var x Prefix
	if err := x.UnmarshalText([]byte("/a/b*")); err == nil {
		t.Error("bad prefix accepted")
	}
}
