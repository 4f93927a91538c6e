package api

import (
	"encoding/json"
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

func TestTreeJSONMatchesNamerd(t *testing.T) {
	leaf := func(id string, ip string, port int) Tree {
		return Tree{Type: TreeLeaf, Bound: &Bound{
			Addr: Addr{Type: AddrBound, Addrs: []Address{{IP: ip, Port: port, Meta: map[string]any{"nodeName": "node-a"}}}},
			ID:   id, Path: "/",
		}}
	}
	for _, tc := range []struct {
		tree Tree
		want string
	}{
		{leaf("/#/io.l5d.k8s/default/http/hello", "10.1.2.3", 7777),
			`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[{"ip":"10.1.2.3","port":7777,"meta":{"nodeName":"node-a"}}],"meta":{}},"id":"/#/io.l5d.k8s/default/http/hello","path":"/"}}`},
		{Tree{Type: TreeUnion, Union: []Weighted{{0.9, Tree{Type: TreeNeg}}, {1, Tree{Type: TreeEmpty}}}},
			`{"type":"union","union":[{"weight":0.9,"tree":{"type":"neg"}},{"weight":1.0,"tree":{"type":"empty"}}]}`},
		{Tree{Type: TreeAlt, Alt: []Tree{{Type: TreeFail}, {Type: TreeLeaf, Bound: &Bound{Addr: Addr{Type: AddrNeg}, ID: "/$/inet/127.0.0.1/1", Path: "/x"}}}},
			`{"type":"alt","alt":[{"type":"fail"},{"type":"leaf","bound":{"addr":{"type":"neg"},"id":"/$/inet/127.0.0.1/1","path":"/x"}}]}`},
		{Tree{Type: TreeLeaf, Bound: &Bound{Addr: Addr{Type: AddrBound}, ID: "/#/a<b>&c", Path: "/"}},
			`{"type":"leaf","bound":{"addr":{"type":"bound","addrs":[],"meta":{}},"id":"/#/a<b>&c","path":"/"}}`},
	} {
		got, err := Marshal(tc.tree)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("Marshal:\n got %s\nwant %s", got, tc.want)
		}
		var back Tree
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", got, err)
		}
		again, _ := Marshal(back)
		if string(again) != tc.want {
			t.Errorf("round trip:\n got %s\nwant %s", again, tc.want)
		}
	}
}

func TestAddrJSON(t *testing.T) {
	for _, tc := range []struct {
		a    Addr
		want string
	}{
		{Addr{Type: AddrNeg}, `{"type":"neg"}`},
		{Addr{Type: AddrFailed, Cause: "boom"}, `{"type":"failed","cause":"boom"}`},
		{Addr{Type: AddrBound, Addrs: []Address{{IP: "::1", Port: 80}}}, `{"type":"bound","addrs":[{"ip":"::1","port":80,"meta":{}}],"meta":{}}`},
	} {
		got, _ := Marshal(tc.a)
		if string(got) != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
	}
	var a Addr
	if err := json.Unmarshal([]byte(`{"type":"weird"}`), &a); err == nil {
		t.Error("unknown address type accepted")
	}
}

func TestDentries(t *testing.T) {
	d := dtab.MustParse("/svc => /#/io.l5d.fs; /svc/world => 0.9*/srv/a & 0.1*/srv/b")
	got, _ := Marshal(DentriesOf(d))
	want := `[{"prefix":"/svc","dst":"/#/io.l5d.fs"},{"prefix":"/svc/world","dst":"0.90*/srv/a & 0.10*/srv/b"}]`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	back, err := ParseDentries(got)
	if err != nil || !back.Equal(d) {
		t.Fatalf("ParseDentries: %v %v", back, err)
	}
	empty, _ := Marshal(DentriesOf(nil))
	if string(empty) != "[]" {
		t.Fatalf("empty dtab: %s", empty)
	}
	if _, err := ParseDentries([]byte(`[{"prefix":"/a","dst":"/b"},null]`)); err != ErrNullDentry {
		t.Fatalf("null dentry: %v", err)
	}
	if _, err := ParseDentries([]byte(`[{"prefix":"a","dst":"/b"}]`)); err == nil {
		t.Fatal("bad prefix accepted")
	}
}
