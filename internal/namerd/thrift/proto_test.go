package thrift

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/naming"
)

// wire builds expected bytes: hex words, and ASCII text quoted with '.
// Field headers are written as <type> <id:2>: 0b string/binary, 08 i32,
// 04 double, 0c struct, 0d map, 0e set, 0f list, 00 stop.
func wire(t *testing.T, parts ...string) []byte {
	t.Helper()
	var b []byte
	for _, p := range parts {
		if strings.HasPrefix(p, "'") {
			b = append(b, strings.Trim(p, "'")...)
			continue
		}
		x, err := hex.DecodeString(strings.ReplaceAll(p, " ", ""))
		if err != nil {
			t.Fatalf("bad hex %q: %v", p, err)
		}
		b = append(b, x...)
	}
	return b
}

func mustEncode(t *testing.T, name string, typ thrift.TMessageType, seq int32, fid int16, v writer) []byte {
	t.Helper()
	b, err := encodeMessage(name, typ, seq, fid, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got  %x\n want %x", what, got, want)
	}
}

func path(s ...string) [][]byte { return fromPath(dtab.Path(s)) }

func TestBindCallBytes(t *testing.T) {
	req := &BindReq{Dtab: "/a=>/b", Name: NameRef{Name: path("svc", "web"), Ns: "default"}}
	got := mustEncode(t, MethodBind, thrift.CALL, 7, 1, req)
	want := wire(t,
		"80010001", "00000004", "'bind'", "00000007", // strict header: version|CALL, name, seqid
		"0c 0001",                         // bind_args.req (struct, 1)
		"0b 0001", "00000006", "'/a=>/b'", // BindReq.dtab
		"0c 0002",             // BindReq.name: NameRef
		"0b 0001", "00000000", // NameRef.stamp: empty binary
		"0f 0002", "0b 00000002", "00000003", "'svc'", "00000003", "'web'", // NameRef.name: list<binary>
		"0b 0003", "00000007", "'default'", // NameRef.ns
		"00",                     // end NameRef
		"0f 0003", "0b 00000000", // BindReq.clientId: empty path
		"00", // end BindReq
		"00", // end args
	)
	checkBytes(t, "bind call", got, want)
	c, err := DecodeCall(got)
	if err != nil {
		t.Fatal(err)
	}
	req.Name.Stamp, req.ClientID = []byte{}, [][]byte{}
	if c.Method != MethodBind || c.Seq != 7 || !reflect.DeepEqual(c.Bind, req) {
		t.Fatalf("decoded %+v %+v", c, c.Bind)
	}
}

func TestBoundReplyBytes(t *testing.T) {
	stamp := []byte{0x80, 0, 0, 0, 0, 0, 0, 1}
	b := &Bound{Stamp: stamp, Ns: "default", Tree: BoundTree{
		Root: BoundNode{Kind: NodeAlt, Alt: []int32{0, 1}},
		Nodes: map[int32]BoundNode{
			0: {Kind: NodeLeaf, Leaf: BoundName{ID: path("#", "x"), Residual: path()}},
			1: {Kind: NodeNeg},
		},
	}}
	got := mustEncode(t, MethodBind, thrift.REPLY, 7, 0, b)
	want := wire(t,
		"80010002", "00000004", "'bind'", "00000007", // version|REPLY
		"0c 0000",                                        // bind_result.success
		"0b 0001", "00000008", hex.EncodeToString(stamp), // Bound.stamp
		"0c 0002",                                                         // Bound.tree
		"0c 0001", "0f 0005", "08 00000002", "00000000", "00000001", "00", // root: BoundNode.alt = [0, 1]
		"0d 0002", "08 0c 00000002", // nodes: map<i32, BoundNode> of 2
		"00000000", "0c 0004", // 0 → BoundNode.leaf
		"0f 0001", "0b 00000002", "00000001", "'#'", "00000001", "'x'", // BoundName.id
		"0f 0002", "0b 00000000", // BoundName.residual
		"00", "00", // end BoundName, end BoundNode
		"00000001", "0c 0001", "00", "00", // 1 → BoundNode.neg (Void)
		"00",                               // end BoundTree
		"0b 0003", "00000007", "'default'", // Bound.ns
		"00", "00",
	)
	checkBytes(t, "bound reply", got, want)
	var back Bound
	if err := decodeReply(got, MethodBind, &back, &BindFailure{}); err != nil {
		t.Fatal(err)
	}
	b.Tree.Nodes[0] = BoundNode{Kind: NodeLeaf, Leaf: BoundName{ID: path("#", "x"), Residual: [][]byte{}}}
	if !reflect.DeepEqual(&back, b) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", back, *b)
	}
}

func TestBindFailureBytes(t *testing.T) {
	f := &BindFailure{Reason: "empty path", RetryInSeconds: math.MaxInt32, Name: NameRef{Stamp: []byte{}, Name: [][]byte{}, Ns: "ns"}, Ns: "ns"}
	got := mustEncode(t, MethodBind, thrift.REPLY, 1, 1, f)
	want := wire(t,
		"80010002", "00000004", "'bind'", "00000001",
		"0c 0001", // bind_result.rf (exception, field 1)
		"0b 0001", "0000000a", "'empty path'",
		"08 0002", "7fffffff",
		"0c 0003", "0b 0001 00000000", "0f 0002 0b 00000000", "0b 0003 00000002", "'ns'", "00",
		"0b 0004", "00000002", "'ns'",
		"00", "00",
	)
	checkBytes(t, "bind failure", got, want)
	err := decodeReply(got, MethodBind, &Bound{}, &BindFailure{})
	var bf *BindFailure
	if !errors.As(err, &bf) || !reflect.DeepEqual(bf, f) {
		t.Fatalf("decoded %v", err)
	}
}

func TestAddrBytes(t *testing.T) {
	call := mustEncode(t, MethodAddr, thrift.CALL, 3, 1, &AddrReq{Name: NameRef{Stamp: []byte{1}, Name: path("#", "web"), Ns: "internal"}})
	checkBytes(t, "addr call", call, wire(t,
		"80010001", "00000004", "'addr'", "00000003",
		"0c 0001",
		"0c 0001", // AddrReq.name
		"0b 0001", "00000001 01",
		"0f 0002", "0b 00000002", "00000001", "'#'", "00000003", "'web'",
		"0b 0003", "00000008", "'internal'",
		"00",
		"0f 0002", "0b 00000000", // AddrReq.clientId
		"00", "00",
	))
	half, auth := 0.5, "web"
	a := &Addr{Stamp: []byte{9}, Bound: &BoundAddr{
		Addresses: []TransportAddress{{IP: []byte{127, 0, 0, 1}, Port: 8080, Meta: &AddrMeta{Weight: &half}}},
		Meta:      &AddrMeta{Authority: &auth},
	}}
	got := mustEncode(t, MethodAddr, thrift.REPLY, 3, 0, a)
	checkBytes(t, "addr reply", got, wire(t,
		"80010002", "00000004", "'addr'", "00000003",
		"0c 0000",
		"0b 0001", "00000001 09", // Addr.stamp
		"0c 0002",                // Addr.value: AddrVal
		"0c 0001",                // AddrVal.bound: BoundAddr
		"0e 0001", "0c 00000001", // addresses: set<TransportAddress> of 1
		"0b 0001", "00000004 7f000001", // ip
		"08 0002", "00001f90", // port 8080
		"0c 0003", "04 0003", "3fe0000000000000", "00", // meta.endpoint_addr_weight 0.5
		"00",                                            // end TransportAddress
		"0c 0002", "0b 0001", "00000003", "'web'", "00", // BoundAddr.meta.authority
		"00", // end BoundAddr
		"00", // end AddrVal
		"00", "00",
	))
	var back Addr
	if err := decodeReply(got, MethodAddr, &back, &AddrFailure{}); err != nil || !reflect.DeepEqual(&back, a) {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	neg := mustEncode(t, MethodAddr, thrift.REPLY, 4, 0, &Addr{Stamp: []byte{}})
	checkBytes(t, "neg addr", neg, wire(t,
		"80010002", "00000004", "'addr'", "00000004",
		"0c 0000", "0b 0001 00000000", "0c 0002", "0c 0002", "00", "00", "00", "00",
	))
	back = Addr{}
	if err := decodeReply(neg, MethodAddr, &back, &AddrFailure{}); err != nil || back.Bound != nil {
		t.Fatalf("neg: %v %+v", err, back)
	}
}

func TestDtabBytes(t *testing.T) {
	call := mustEncode(t, MethodDtab, thrift.CALL, 2, 1, &DtabReq{Stamp: []byte{}, Ns: "default"})
	checkBytes(t, "dtab call", call, wire(t,
		"80010001", "00000004", "'dtab'", "00000002",
		"0c 0001", "0b 0001 00000000", "0b 0002", "00000007", "'default'", "0f 0003 0b 00000000", "00", "00",
	))
	reply := mustEncode(t, MethodDtab, thrift.REPLY, 2, 0, &DtabRef{Stamp: []byte{1, 2}, Dtab: "/a=>/b"})
	checkBytes(t, "dtab reply", reply, wire(t,
		"80010002", "00000004", "'dtab'", "00000002",
		"0c 0000", "0b 0001 00000002 0102", "0b 0002", "00000006", "'/a=>/b'", "00", "00",
	))
	c, err := DecodeCall(call)
	if err != nil || c.Dtab == nil || c.Dtab.Ns != "default" {
		t.Fatalf("decoded %+v %v", c, err)
	}
}

// An unknown method is answered with a TApplicationException, which the
// client decodes as an error.
func TestAppException(t *testing.T) {
	b, err := encodeAppException("__can__finagle__trace__v3__", 0, thrift.UNKNOWN_METHOD, "nope")
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "exception", b, wire(t,
		"80010003", "0000001b", "'__can__finagle__trace__v3__'", "00000000", // version|EXCEPTION
		"0b 0001", "00000004", "'nope'", // message
		"08 0002", "00000001", // type UNKNOWN_METHOD
		"00",
	))
	err = decodeReply(b, "__can__finagle__trace__v3__", &Bound{}, &BindFailure{})
	var ae thrift.TApplicationException
	if !errors.As(err, &ae) || ae.TypeId() != thrift.UNKNOWN_METHOD {
		t.Fatalf("decoded %v", err)
	}
}

// Bound trees are numbered as Linkerd numbers them: the children of an
// alt or union in pre-order, each before its own children.
func TestMkTreeNumbering(t *testing.T) {
	leaf := func(id string) naming.BoundTree {
		return dtab.LeafTree(&naming.Bound{ID: dtab.MustParsePath(id)})
	}
	tree := dtab.AltTree(
		leaf("/#/a"),
		dtab.UnionTree(
			dtab.Weighted[*naming.Bound]{Weight: 1, Tree: leaf("/#/b")},
			dtab.Weighted[*naming.Bound]{Weight: 2, Tree: dtab.AltTree(leaf("/#/c"), dtab.NegTree[*naming.Bound]())},
		),
	)
	root, nodes, next := mkTree(tree, 0)
	lf := func(id string) BoundNode {
		return BoundNode{Kind: NodeLeaf, Leaf: BoundName{ID: fromPath(dtab.MustParsePath(id)), Residual: [][]byte{}}}
	}
	wantNodes := map[int32]BoundNode{
		0: lf("/#/a"),
		1: {Kind: NodeWeighted, Weighted: []WeightedNodeID{{1, 2}, {2, 3}}},
		2: lf("/#/b"),
		3: {Kind: NodeAlt, Alt: []int32{4, 5}},
		4: lf("/#/c"),
		5: {Kind: NodeNeg},
	}
	if next != 6 || !reflect.DeepEqual(root, BoundNode{Kind: NodeAlt, Alt: []int32{0, 1}}) || !reflect.DeepEqual(nodes, wantNodes) {
		t.Fatalf("mkTree: next %d root %+v nodes %+v", next, root, nodes)
	}
	// And back.
	bound := func(id, res dtab.Path) *naming.Bound { return &naming.Bound{ID: id, Residual: res} }
	back, err := boundTree(BoundTree{Root: root, Nodes: nodes}, bound)
	if err != nil {
		t.Fatal(err)
	}
	show := func(t naming.BoundTree) string {
		return dtab.ShowTreeFunc(t, func(b *naming.Bound) string { return b.ID.String() })
	}
	if show(back) != show(tree) {
		t.Fatalf("round trip: %s, want %s", show(back), show(tree))
	}
	// A cyclic or dangling tree from a bad peer is an error, not a hang.
	if _, err := boundTree(BoundTree{Root: BoundNode{Kind: NodeAlt, Alt: []int32{0}}, Nodes: map[int32]BoundNode{0: {Kind: NodeAlt, Alt: []int32{0}}}}, bound); err == nil {
		t.Fatal("cyclic tree accepted")
	}
	if _, err := boundTree(BoundTree{Root: BoundNode{Kind: NodeAlt, Alt: []int32{7}}}, bound); err == nil {
		t.Fatal("dangling node id accepted")
	}
}

// Mux frames: size:4 type:1 tag:3 body.
func TestMuxFrames(t *testing.T) {
	checkBytes(t, "Rerr marker", appendMux(nil, muxBadRerr, tinitTag, []byte(canTinit)), wire(t, "0000000f", "7f 000001", "'tinit check'"))
	checkBytes(t, "Tinit", appendMux(nil, muxTinit, tinitTag, initBody(1, [][2][]byte{{[]byte("k"), []byte("vv")}})),
		wire(t, "00000011", "44 000001", "0001", "00000001", "'k'", "00000002", "'vv'"))
	checkBytes(t, "Tdispatch", appendMux(nil, muxTdispatch, 0x010203, tdispatchHeader, []byte("x")),
		wire(t, "0000000b", "02 010203", "0000", "0000", "0000", "'x'"))
	d, err := parseTdispatch(wire(t, "0001", "0002", "'ck'", "0001", "'v'", "0004", "'/dst'", "0001", "0002", "'/a'", "0002", "'/b'", "'body'"))
	if err != nil || string(d.body) != "body" || d.dst != "/dst" || len(d.contexts) != 1 || d.dtab[0] != [2]string{"/a", "/b"} {
		t.Fatalf("Tdispatch: %+v %v", d, err)
	}
	if _, err := parseTdispatch(wire(t, "0001", "0005", "'ab'")); err == nil {
		t.Fatal("truncated Tdispatch accepted")
	}
	st, body, err := parseRdispatch(wire(t, "00", "0001", "0001", "'k'", "0000", "'reply'"))
	if err != nil || st != 0 || string(body) != "reply" {
		t.Fatalf("Rdispatch: %d %q %v", st, body, err)
	}
	v, h, err := parseInit(wire(t, "0001", "00000001", "'k'", "00000000"))
	if err != nil || v != 1 || len(h) != 1 || string(h[0][0]) != "k" {
		t.Fatalf("init: %d %v %v", v, h, err)
	}
}

func TestDelegateBytes(t *testing.T) {
	p := path("svc")
	req := &DelegateReq{Dtab: "", Delegation: Delegation{Stamp: []byte{}, Ns: "ns", Tree: DelegateTree{
		Root: DelegateNode{Path: p, Dentry: nopDentry, Contents: DelegateContents{Kind: DelegatePathLeaf, PathLeaf: p}},
	}}}
	got := mustEncode(t, MethodDelegate, thrift.CALL, 5, 1, req)
	checkBytes(t, "delegate call", got, wire(t,
		"80010001", "00000008", "'delegate'", "00000005",
		"0c 0001",
		"0b 0001", "00000000", // DelegateReq.dtab
		"0c 0002",             // DelegateReq.delegation
		"0b 0001", "00000000", // Delegation.stamp
		"0c 0002",                                     // Delegation.tree
		"0c 0001",                                     // DelegateTree.root
		"0f 0001", "0b 00000001", "00000003", "'svc'", // DelegateNode.path
		"0b 0002", "00000008", `'/\x2f=>~'`, // DelegateNode.dentry (Dentry.nop)
		"0c 0003", "0f 0007", "0b 00000001", "00000003", "'svc'", "00", // contents.pathLeaf
		"00",                        // end root
		"0d 0002", "08 0c 00000000", // DelegateTree.nodes: empty map
		"00", // end tree
		"0b 0003", "00000002", "'ns'",
		"00",                     // end Delegation
		"0f 0003", "0b 00000000", // clientId
		"00", "00",
	))
	c, err := DecodeCall(got)
	if err != nil || c.Delegate == nil || c.Delegate.Delegation.Tree.Root.Contents.Kind != DelegatePathLeaf || c.Delegate.Delegation.Ns != "ns" {
		t.Fatalf("decoded %+v %v", c, err)
	}
}

// Delegations are numbered as Linkerd numbers them: alt and union children
// in pre-order, a delegate node's child after that child's own subtree.
func TestMkDelegateTreeNumbering(t *testing.T) {
	de, err := dtab.ParseDentry("/a=>/b")
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(id string) naming.DelegateNode {
		return naming.DelegateNode{Kind: naming.DelegateLeaf, Path: dtab.MustParsePath(id), Bound: &naming.Bound{ID: dtab.MustParsePath(id)}}
	}
	y := leaf("/#/y")
	root := naming.DelegateNode{Kind: naming.DelegateDelegated, Path: dtab.MustParsePath("/a"), Dentry: &de, Child: &naming.DelegateNode{
		Kind: naming.DelegateAlt, Path: dtab.MustParsePath("/b"),
		Alts: []naming.DelegateNode{leaf("/#/x"), {Kind: naming.DelegateDelegated, Path: dtab.MustParsePath("/c"), Child: &y}},
	}}
	troot, nodes, next := mkDelegateTree(root, nodeDentry(root.Dentry), 0)
	if next != 4 || troot.Dentry != "/a=>/b" || troot.Contents.Kind != DelegateDelegate || troot.Contents.Delegate != 3 {
		t.Fatalf("root %+v next %d", troot, next)
	}
	if nodes[3].Contents.Kind != DelegateAlt || !reflect.DeepEqual(nodes[3].Contents.Alt, []int32{0, 1}) ||
		nodes[0].Contents.Kind != DelegateBoundLeaf || nodes[1].Contents.Delegate != 2 || nodes[2].Contents.Kind != DelegateBoundLeaf ||
		toPath(nodes[2].Contents.BoundLeaf.ID).String() != "/#/y" || nodes[1].Dentry != nopDentry {
		t.Fatalf("nodes %+v", nodes)
	}
}

func TestReadFrameLimits(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 100<<10)
	withSize := func(n uint32, body []byte) *bufio.Reader {
		return bufio.NewReader(bytes.NewReader(append(binary.BigEndian.AppendUint32(nil, n), body...)))
	}
	if f, err := readFrame(withSize(uint32(len(big)), big)); err != nil || !bytes.Equal(f, big) {
		t.Fatalf("100KiB frame: %d bytes, %v", len(f), err)
	}
	if _, err := readFrame(withSize(uint32(len(big)), big[:len(big)-1])); err == nil {
		t.Fatal("truncated large frame accepted")
	}
	if _, err := readFrame(withSize(MaxFrameSize+1, nil)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized frame: %v", err)
	}
}
