package mesh

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// unhex decodes hex written with spaces and comments ("# ..." to the end
// of a line).
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "#")
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(strings.TrimSpace(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func path(elems ...string) *Path {
	p := &Path{}
	for _, e := range elems {
		p.Elems = append(p.Elems, []byte(e))
	}
	return p
}

// The expected bytes below are derived by hand from the field numbers of
// Linkerd's .proto files: a tag byte is (field << 3) | wire type, with
// type 2 for messages, bytes and strings, 0 for varints and 1 for doubles.
func TestWireGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  Message
		into Message
		hex  string
	}{{
		name: "BindReq",
		msg: &BindReq{Root: path("default"), Name: path("svc", "hello"), Dtab: &Dtab{Dentries: []Dentry{{
			Prefix: &Prefix{Elems: []PrefixElem{{Label: []byte("svc"), Set: true}}},
			Dst:    &NameTree{Kind: TreeLeaf, Leaf: &Leaf{ID: path("#", "io.l5d.fs")}},
		}}}},
		into: new(BindReq),
		hex: `
			0a 09  0a 07 64656661756c74        # root = 1: Path { elems = 1: "default" }
			12 0c  0a 03 737663  0a 05 68656c6c6f   # name = 2: /svc/hello
			1a 1f                              # dtab = 3 (31 bytes)
			  0a 1d                            #   dentries = 1 (29 bytes)
			    0a 07  0a 05  0a 03 737663     #     prefix = 1 { elems = 1 { label = 1: "svc" } }
			    12 12                          #     dst = 2: PathNameTree (18 bytes)
			      32 10                        #       leaf = 6 (16 bytes)
			        0a 0e  0a 01 23  0a 09 696f2e6c35642e6673   # id = 1: /#/io.l5d.fs
		`,
	}, {
		name: "Replicas bound, INET4 written although it is the default",
		msg:  &Replicas{Kind: ReplicasBound, Endpoints: []Endpoint{{InetAF: INET4, Address: []byte{127, 0, 0, 1}, Port: 8080}}},
		into: new(Replicas),
		hex: `
			22 0d                    # bound = 4 (13 bytes)
			  0a 0b                  #   endpoints = 1 (11 bytes)
			    08 00                #     inet_af = 1: INET4 (0)
			    12 04 7f000001       #     address = 2: 127.0.0.1
			    18 903f              #     port = 3: 8080 as a varint
		`,
	}, {
		name: "BoundTreeRsp union",
		msg:  &BoundTreeRsp{Tree: &NameTree{Kind: TreeUnion, Union: []Weighted{{Weight: 0.5, Tree: &NameTree{Kind: TreeNeg}}}}},
		into: new(BoundTreeRsp),
		hex: `
			0a 11                          # tree = 1: BoundNameTree (17 bytes)
			  2a 0f                        #   union = 5 (15 bytes)
			    0a 0d                      #     trees = 1: Weighted (13 bytes)
			      09 000000000000e03f      #       weight = 1: 0.5, little-endian IEEE 754
			      12 02  0a 00             #       tree = 2 { neg = 1 {} }
		`,
	}, {
		name: "Replicas failed",
		msg:  &Replicas{Kind: ReplicasFailed, Message: "boom"},
		into: new(Replicas),
		hex:  `1a 06  0a 04 626f6f6d   # failed = 3 { message = 1: "boom" }`,
	}, {
		name: "DtabRsp",
		msg:  &DtabRsp{Dtab: &VersionedDtab{Version: &[]byte{1}, Dtab: &Dtab{}}},
		into: new(DtabRsp),
		hex: `
			0a 07                # dtab = 1: VersionedDtab (7 bytes)
			  0a 03  0a 01 01    #   version = 1 { id = 1: 0x01 }
			  12 00              #   dtab = 2: the empty Dtab
		`,
	}, {
		name: "DelegateTreeRsp exception",
		msg:  &DelegateTreeRsp{Tree: &DelegateTree{Path: path("a"), Dentry: nopDentry(), Kind: TreeException, Exception: "x"}},
		into: new(DelegateTreeRsp),
		hex: `
			0a 15                    # tree = 1: BoundDelegateTree (21 bytes)
			  0a 03  0a 01 61        #   path = 1: /a
			  12 0b                  #   dentry = 2 (11 bytes): Dentry.nop
			    0a 05  0a 03  0a 01 2f   # prefix { elems { label: "/" } }
			    12 02  0a 00         #     dst = 2 { neg = 1 {} }
			  5a 01 78               #   exception = 11: "x"
		`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.hex)
			got := Marshal(tc.msg)
			if hex.EncodeToString(got) != hex.EncodeToString(want) {
				t.Fatalf("encoding:\n got  %x\n want %x", got, want)
			}
			if err := tc.into.UnmarshalWire(want); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if !reflect.DeepEqual(tc.into, tc.msg) {
				t.Fatalf("decoded %+v, want %+v", tc.into, tc.msg)
			}
		})
	}
}

// Proto3 readers accept fields in any order, repeated oneof members (the
// last wins) and unknown fields; Linkerd's runtime may send all three.
func TestWireDecodeLenient(t *testing.T) {
	var r Replicas
	b := unhex(t, `
		12 00              # neg = 2
		a2 06 03 010203    # unknown field 100 (bytes)
		c8 3e 07           # unknown field 1001 (varint)
		0a 00              # pending = 1: the last member wins
	`)
	if err := r.UnmarshalWire(b); err != nil || r.Kind != ReplicasPending {
		t.Fatalf("got %+v, %v; want pending", r, err)
	}
}

func TestWireDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  Message
		hex  string
		want string
	}{
		{"truncated length", new(BindReq), "0a 05 0a", "unexpected EOF"},
		{"wrong wire type", new(Endpoint), "0a 00", "field 1: wire type 2, want varint"},
		{"bad tag", new(Path), "00", "invalid field number"},
		{"wrong type for weight", new(NameTree), "2a 04 0a 02 08 01", "field 1: wire type 0, want 64-bit"},
	} {
		err := tc.msg.UnmarshalWire(unhex(t, tc.hex))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestWireDepthLimit(t *testing.T) {
	tree := &NameTree{Kind: TreeNeg}
	for range MaxTreeDepth + 5 {
		tree = &NameTree{Kind: TreeAlt, Alt: []NameTree{*tree}}
	}
	b := Marshal(&BoundTreeRsp{Tree: tree})
	var rsp BoundTreeRsp
	if err := rsp.UnmarshalWire(b); !errors.Is(err, errTooDeep) {
		t.Fatalf("got %v, want errTooDeep", err)
	}
	d := &DelegateTree{Kind: TreeNeg}
	for range MaxTreeDepth + 5 {
		d = &DelegateTree{Kind: TreeDelegate, Delegate: d}
	}
	var drsp DelegateTreeRsp
	if err := drsp.UnmarshalWire(Marshal(&DelegateTreeRsp{Tree: d})); !errors.Is(err, errTooDeep) {
		t.Fatalf("delegate tree: got %v, want errTooDeep", err)
	}
}

// benchTree is a bound tree of the size a canary split produces: a union
// of two alternations of leaves.
func benchTree() *BoundTreeRsp {
	leaf := func(id string) NameTree {
		return NameTree{Kind: TreeLeaf, Leaf: &Leaf{ID: path("#", "io.l5d.k8s", "default", "http", id), Residual: path()}}
	}
	alt := func(a, b string) *NameTree {
		return &NameTree{Kind: TreeAlt, Alt: []NameTree{leaf(a), leaf(b)}}
	}
	return &BoundTreeRsp{Tree: &NameTree{Kind: TreeUnion, Union: []Weighted{{Weight: 0.9, Tree: alt("world-v1", "world")}, {Weight: 0.1, Tree: alt("world-v2", "world")}}}}
}

func BenchmarkBoundTreeEncode(b *testing.B) {
	m := benchTree()
	b.ReportAllocs()
	for b.Loop() {
		_ = Marshal(m)
	}
}

func BenchmarkBoundTreeDecode(b *testing.B) {
	data := Marshal(benchTree())
	b.ReportAllocs()
	for b.Loop() {
		var m BoundTreeRsp
		if err := m.UnmarshalWire(data); err != nil {
			b.Fatal(err)
		}
	}
}

// Messages longer than 127 bytes get a multi-byte length: the in-place
// encoder moves them up to make room.
func TestWireLongMessages(t *testing.T) {
	long := strings.Repeat("x", 300)
	m := &BindReq{Root: path("default"), Name: path("svc", long), Dtab: &Dtab{}}
	got := Marshal(m)
	name := append(append([]byte{0x0a, 0x03}, "svc"...), append([]byte{0x0a, 0xac, 0x02}, long...)...)                 // 300 = 0xac 0x02
	want := append(append([]byte{0x0a, 0x09, 0x0a, 0x07}, "default"...), append([]byte{0x12, 0xb4, 0x02}, name...)...) // 5 + 3 + 300 = 308 = 0xb4 0x02
	want = append(want, 0x1a, 0x00)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding:\n got  %x\n want %x", got, want)
	}
	var back BindReq
	if err := back.UnmarshalWire(got); err != nil || !reflect.DeepEqual(&back, m) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	// Deeply nested long content: every level needs a two-byte length.
	tree := &NameTree{Kind: TreeLeaf, Leaf: &Leaf{ID: path(long)}}
	for range 5 {
		tree = &NameTree{Kind: TreeAlt, Alt: []NameTree{*tree, {Kind: TreeNeg}}}
	}
	var rsp BoundTreeRsp
	if err := rsp.UnmarshalWire(Marshal(&BoundTreeRsp{Tree: tree})); err != nil || !reflect.DeepEqual(rsp.Tree, tree) {
		t.Fatalf("nested round trip: %v", err)
	}
}
