package api

import (
	"encoding/json"
	"testing"
)

// FuzzTreeJSON: any bind document that decodes re-encodes to a document
// that decodes to the same encoding (what the io.l5d.namerd.http
// interpreter relies on when reading namerd's streams).
func FuzzTreeJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"neg"}`,
		`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"10.1.2.3","port":7777,"meta":{"nodeName":"a"}}],"meta":{}},"id":"/#/io.l5d.k8s/default/http/hello","path":"/"}}`,
		`{"type":"union","union":[{"weight":0.9,"tree":{"type":"empty"}},{"weight":"NaN","tree":{"type":"fail"}}]}`,
		`{"type":"alt","alt":[{"type":"exception","message":"boom"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr Tree
		if json.Unmarshal(b, &tr) != nil {
			return
		}
		once, err := Marshal(tr)
		if err != nil {
			return // e.g. a leaf whose addr has values JSON cannot hold
		}
		var back Tree
		if err := json.Unmarshal(once, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", once, err)
		}
		twice, err := Marshal(back)
		if err != nil || string(twice) != string(once) {
			t.Fatalf("not stable:\n%s\n%s (%v)", once, twice, err)
		}
	})
}

// FuzzParseDentries: JSON dtabs that parse print back to JSON that parses
// to the same dtab.
func FuzzParseDentries(f *testing.F) {
	f.Add([]byte(`[{"prefix":"/svc","dst":"/#/io.l5d.fs"}]`))
	f.Add([]byte(`[{"prefix":"/svc/*","dst":"0.9*/a & 0.1*/b | ~"},null]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDentries(b)
		if err != nil {
			return
		}
		out, err := Marshal(DentriesOf(d))
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseDentries(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		out2, _ := Marshal(DentriesOf(back))
		if string(out2) != string(out) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}
