package mesh

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// The messages of package io.linkerd.mesh (Linkerd 1.x,
// mesh/core/src/main/protobuf: dtab.proto, interpreter.proto,
// resolver.proto, delegator.proto, codec.proto). Field numbers are in the
// comments and in the encoders; names are Linkerd's, in Go case. A pointer
// field is a message field that may be absent; decoders copy every byte
// they keep (gRPC reuses the buffer).

// MaxTreeDepth bounds the nesting of a decoded tree (name trees, delegate
// trees, dentry destinations within them).
const MaxTreeDepth = 100

// Message is implemented by every message type.
type Message interface {
	// AppendWire appends the message's wire encoding to b.
	AppendWire(b []byte) []byte
	// UnmarshalWire replaces the message with the one encoded in b.
	UnmarshalWire(b []byte) error
}

// Marshal returns m's wire encoding.
func Marshal(m Message) []byte { return m.AppendWire(nil) }

// Path is io.linkerd.mesh.Path { repeated bytes elems = 1; }.
type Path struct {
	Elems [][]byte
}

// TreeKind says which member of a tree's `node` oneof is set.
type TreeKind uint8

// Tree node kinds. TreeNone means the oneof is unset (Linkerd rejects
// such a tree).
const (
	TreeNone TreeKind = iota
	TreeNeg
	TreeFail
	TreeEmpty
	TreeAlt
	TreeUnion
	TreeLeaf
	TreeDelegate       // BoundDelegateTree only
	TreeTransformation // BoundDelegateTree only
	TreeException      // BoundDelegateTree only
)

// NameTree is both PathNameTree (dtab.proto) and BoundNameTree
// (interpreter.proto): their oneofs share the field numbers
//
//	neg = 1; fail = 2; empty = 3; alt = 4 (Alt { repeated trees = 1; });
//	union = 5 (Union { repeated Weighted trees = 1; }, Weighted { double
//	weight = 1; tree = 2; }); leaf = 6.
//
// A PathNameTree Leaf is { Path id = 1; }; a BoundNameTree Leaf adds
// { Path residual = 2; } (Residual is nil in path trees).
type NameTree struct {
	Kind  TreeKind
	Alt   []NameTree
	Union []Weighted
	Leaf  *Leaf
}

// Weighted is a union branch.
type Weighted struct {
	Weight float64
	Tree   *NameTree
}

// Leaf is a tree leaf: Leaf { Path id = 1; Path residual = 2; }.
type Leaf struct {
	ID       *Path
	Residual *Path
}

// Dtab is io.linkerd.mesh.Dtab { repeated Dentry dentries = 1; }.
type Dtab struct {
	Dentries []Dentry
}

// Dentry is Dtab.Dentry { Prefix prefix = 1; PathNameTree dst = 2; }.
type Dentry struct {
	Prefix *Prefix
	Dst    *NameTree
}

// Prefix is Dentry.Prefix { repeated Elem elems = 1; }.
type Prefix struct {
	Elems []PrefixElem
}

// PrefixElem is Prefix.Elem { oneof value { bytes label = 1; Wildcard
// wildcard = 2; } }. Set is false when neither is.
type PrefixElem struct {
	Label    []byte
	Wildcard bool
	Set      bool
}

// VersionedDtab is { Version version = 1 (Version { bytes id = 1; });
// Dtab dtab = 2; }.
type VersionedDtab struct {
	Version *[]byte
	Dtab    *Dtab
}

// BindReq is Interpreter's request { Path root = 1; Path name = 2; Dtab
// dtab = 3; }.
type BindReq struct {
	Root, Name *Path
	Dtab       *Dtab
}

// BoundTreeRsp is { BoundNameTree tree = 1; }.
type BoundTreeRsp struct {
	Tree *NameTree
}

// ReplicasReq is Resolver's request { Path id = 1; }.
type ReplicasReq struct {
	ID *Path
}

// Endpoint address families (Endpoint.AddressFamily).
const (
	INET4 = 0
	INET6 = 1
)

// Endpoint is { AddressFamily inet_af = 1; bytes address = 2; int32
// port = 3; Meta meta = 4 (Meta { string nodeName = 1; }); map<string,
// string> metadata = 5; }.
type Endpoint struct {
	InetAF   int32
	Address  []byte
	Port     int32
	Meta     *EndpointMeta
	Metadata map[string]string
}

// EndpointMeta is Endpoint.Meta.
type EndpointMeta struct {
	NodeName string
}

// ReplicasKind says which member of Replicas' `result` oneof is set.
type ReplicasKind uint8

// Replicas results.
const (
	ReplicasNone    ReplicasKind = iota
	ReplicasPending              // pending = 1 {}
	ReplicasNeg                  // neg = 2 {}
	ReplicasFailed               // failed = 3 { string message = 1; }
	ReplicasBound                // bound = 4 { repeated Endpoint endpoints = 1; map<string,string> metadata = 2; }
)

// Replicas is Resolver's answer.
type Replicas struct {
	Kind      ReplicasKind
	Message   string
	Endpoints []Endpoint
	Metadata  map[string]string
}

// DtabReq is { Path root = 1; }.
type DtabReq struct {
	Root *Path
}

// DtabRsp is { VersionedDtab dtab = 1; }.
type DtabRsp struct {
	Dtab *VersionedDtab
}

// DelegateTreeReq is { Path root = 1; PathNameTree tree = 2; Dtab dtab =
// 3; }.
type DelegateTreeReq struct {
	Root *Path
	Tree *NameTree
	Dtab *Dtab
}

// DelegateTreeRsp is { BoundDelegateTree tree = 1; }.
type DelegateTreeRsp struct {
	Tree *DelegateTree
}

// DelegateTree is BoundDelegateTree { Path path = 1; Dtab.Dentry dentry =
// 2; oneof node { Neg neg = 3; Fail fail = 4; Empty empty = 5; Alt alt =
// 6; Union union = 7; Leaf leaf = 8; BoundDelegateTree delegate = 9;
// Transformation transformation = 10; string exception = 11; } }.
type DelegateTree struct {
	Path           *Path
	Dentry         *Dentry
	Kind           TreeKind
	Alt            []DelegateTree
	Union          []DelegateWeighted
	Leaf           *Leaf
	Delegate       *DelegateTree
	Transformation *Transformation
	Exception      string
}

// DelegateWeighted is a delegate union branch { double weight = 1;
// BoundDelegateTree tree = 2; }.
type DelegateWeighted struct {
	Weight float64
	Tree   *DelegateTree
}

// Transformation is { string name = 1; Leaf leaf = 2; BoundDelegateTree
// tree = 3; }.
type Transformation struct {
	Name string
	Leaf *Leaf
	Tree *DelegateTree
}

// Codec service messages: { string text = 1; } or { Dtab/Path x = 1; }.
type (
	// ReadDtabReq is { string text = 1; }.
	ReadDtabReq struct{ Text string }
	// ReadDtabRsp is { Dtab dtab = 1; }.
	ReadDtabRsp struct{ Dtab *Dtab }
	// ShowDtabReq is { Dtab dtab = 1; }.
	ShowDtabReq struct{ Dtab *Dtab }
	// ShowDtabRsp is { string text = 1; }.
	ShowDtabRsp struct{ Text string }
	// ReadPathReq is { string text = 1; }.
	ReadPathReq struct{ Text string }
	// ReadPathRsp is { Path path = 1; }.
	ReadPathRsp struct{ Path *Path }
	// ShowPathReq is { Path path = 1; }.
	ShowPathReq struct{ Path *Path }
	// ShowPathRsp is { string text = 1; }.
	ShowPathRsp struct{ Text string }
)

// ---- encoding ----

// appendMsg appends field num holding the message enc appends. The
// message is encoded in place after a one-byte length (the common case);
// a longer one is moved up to make room for its length's varint.
func appendMsg(b []byte, num protowire.Number, enc func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	at := len(b)
	b = enc(append(b, 0))
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[at+size:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, v)
}

func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendEmpty appends an empty message (the Neg {}, Wildcard {} kind).
func appendEmpty(b []byte, num protowire.Number) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendVarint(b, 0)
}

// appendMap appends a map<string, string> field: one entry message
// { key = 1; value = 2; } per key, in key order (deterministic output).
func appendMap(b []byte, num protowire.Number, m map[string]string) []byte {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = appendMsg(b, num, func(b []byte) []byte {
			return appendString(appendString(b, 1, k), 2, m[k])
		})
	}
	return b
}

// AppendWire implements Message.
func (p *Path) AppendWire(b []byte) []byte {
	for _, e := range p.Elems {
		b = appendBytes(b, 1, e)
	}
	return b
}

func appendPath(b []byte, num protowire.Number, p *Path) []byte {
	if p == nil {
		return b
	}
	return appendMsg(b, num, p.AppendWire)
}

// AppendWire implements Message.
func (t *NameTree) AppendWire(b []byte) []byte {
	switch t.Kind {
	case TreeNeg:
		b = appendEmpty(b, 1)
	case TreeFail:
		b = appendEmpty(b, 2)
	case TreeEmpty:
		b = appendEmpty(b, 3)
	case TreeAlt:
		b = appendMsg(b, 4, func(b []byte) []byte {
			for i := range t.Alt {
				b = appendMsg(b, 1, t.Alt[i].AppendWire)
			}
			return b
		})
	case TreeUnion:
		b = appendMsg(b, 5, func(b []byte) []byte {
			for _, w := range t.Union {
				b = appendMsg(b, 1, func(b []byte) []byte {
					// Always written: Linkerd drops a branch without weight.
					b = appendDouble(b, 1, w.Weight)
					if w.Tree != nil {
						b = appendMsg(b, 2, w.Tree.AppendWire)
					}
					return b
				})
			}
			return b
		})
	case TreeLeaf:
		if t.Leaf != nil {
			b = appendMsg(b, 6, t.Leaf.AppendWire)
		}
	}
	return b
}

// AppendWire implements Message.
func (l *Leaf) AppendWire(b []byte) []byte {
	b = appendPath(b, 1, l.ID)
	return appendPath(b, 2, l.Residual)
}

// AppendWire implements Message.
func (d *Dtab) AppendWire(b []byte) []byte {
	for i := range d.Dentries {
		b = appendMsg(b, 1, d.Dentries[i].AppendWire)
	}
	return b
}

func appendDtab(b []byte, num protowire.Number, d *Dtab) []byte {
	if d == nil {
		return b
	}
	return appendMsg(b, num, d.AppendWire)
}

// AppendWire implements Message.
func (d *Dentry) AppendWire(b []byte) []byte {
	if d.Prefix != nil {
		b = appendMsg(b, 1, func(b []byte) []byte {
			for _, e := range d.Prefix.Elems {
				b = appendMsg(b, 1, func(b []byte) []byte {
					switch {
					case e.Wildcard:
						return appendEmpty(b, 2)
					case e.Set:
						return appendBytes(b, 1, e.Label)
					}
					return b
				})
			}
			return b
		})
	}
	if d.Dst != nil {
		b = appendMsg(b, 2, d.Dst.AppendWire)
	}
	return b
}

// AppendWire implements Message.
func (v *VersionedDtab) AppendWire(b []byte) []byte {
	if v.Version != nil {
		b = appendMsg(b, 1, func(b []byte) []byte { return appendBytes(b, 1, *v.Version) })
	}
	return appendDtab(b, 2, v.Dtab)
}

// AppendWire implements Message.
func (r *BindReq) AppendWire(b []byte) []byte {
	b = appendPath(b, 1, r.Root)
	b = appendPath(b, 2, r.Name)
	return appendDtab(b, 3, r.Dtab)
}

// AppendWire implements Message.
func (r *BoundTreeRsp) AppendWire(b []byte) []byte {
	if r.Tree != nil {
		b = appendMsg(b, 1, r.Tree.AppendWire)
	}
	return b
}

// AppendWire implements Message.
func (r *ReplicasReq) AppendWire(b []byte) []byte { return appendPath(b, 1, r.ID) }

// AppendWire implements Message. inet_af, address and port are always
// written: Linkerd skips an endpoint that lacks one.
func (e *Endpoint) AppendWire(b []byte) []byte {
	b = appendVarint(b, 1, uint64(e.InetAF))
	b = appendBytes(b, 2, e.Address)
	b = appendVarint(b, 3, uint64(int64(e.Port))) // int32: sign-extended
	if e.Meta != nil {
		b = appendMsg(b, 4, func(b []byte) []byte { return appendString(b, 1, e.Meta.NodeName) })
	}
	return appendMap(b, 5, e.Metadata)
}

// AppendWire implements Message.
func (r *Replicas) AppendWire(b []byte) []byte {
	switch r.Kind {
	case ReplicasPending:
		b = appendEmpty(b, 1)
	case ReplicasNeg:
		b = appendEmpty(b, 2)
	case ReplicasFailed:
		b = appendMsg(b, 3, func(b []byte) []byte { return appendString(b, 1, r.Message) })
	case ReplicasBound:
		b = appendMsg(b, 4, func(b []byte) []byte {
			for i := range r.Endpoints {
				b = appendMsg(b, 1, r.Endpoints[i].AppendWire)
			}
			return appendMap(b, 2, r.Metadata)
		})
	}
	return b
}

// AppendWire implements Message.
func (r *DtabReq) AppendWire(b []byte) []byte { return appendPath(b, 1, r.Root) }

// AppendWire implements Message.
func (r *DtabRsp) AppendWire(b []byte) []byte {
	if r.Dtab != nil {
		b = appendMsg(b, 1, r.Dtab.AppendWire)
	}
	return b
}

// AppendWire implements Message.
func (r *DelegateTreeReq) AppendWire(b []byte) []byte {
	b = appendPath(b, 1, r.Root)
	if r.Tree != nil {
		b = appendMsg(b, 2, r.Tree.AppendWire)
	}
	return appendDtab(b, 3, r.Dtab)
}

// AppendWire implements Message.
func (r *DelegateTreeRsp) AppendWire(b []byte) []byte {
	if r.Tree != nil {
		b = appendMsg(b, 1, r.Tree.AppendWire)
	}
	return b
}

// AppendWire implements Message.
func (t *DelegateTree) AppendWire(b []byte) []byte {
	b = appendPath(b, 1, t.Path)
	if t.Dentry != nil {
		b = appendMsg(b, 2, t.Dentry.AppendWire)
	}
	switch t.Kind {
	case TreeNeg:
		b = appendEmpty(b, 3)
	case TreeFail:
		b = appendEmpty(b, 4)
	case TreeEmpty:
		b = appendEmpty(b, 5)
	case TreeAlt:
		b = appendMsg(b, 6, func(b []byte) []byte {
			for i := range t.Alt {
				b = appendMsg(b, 1, t.Alt[i].AppendWire)
			}
			return b
		})
	case TreeUnion:
		b = appendMsg(b, 7, func(b []byte) []byte {
			for _, w := range t.Union {
				b = appendMsg(b, 1, func(b []byte) []byte {
					b = appendDouble(b, 1, w.Weight)
					if w.Tree != nil {
						b = appendMsg(b, 2, w.Tree.AppendWire)
					}
					return b
				})
			}
			return b
		})
	case TreeLeaf:
		if t.Leaf != nil {
			b = appendMsg(b, 8, t.Leaf.AppendWire)
		}
	case TreeDelegate:
		if t.Delegate != nil {
			b = appendMsg(b, 9, t.Delegate.AppendWire)
		}
	case TreeTransformation:
		if tr := t.Transformation; tr != nil {
			b = appendMsg(b, 10, func(b []byte) []byte {
				b = appendString(b, 1, tr.Name)
				if tr.Leaf != nil {
					b = appendMsg(b, 2, tr.Leaf.AppendWire)
				}
				if tr.Tree != nil {
					b = appendMsg(b, 3, tr.Tree.AppendWire)
				}
				return b
			})
		}
	case TreeException:
		b = appendString(b, 11, t.Exception)
	}
	return b
}

// AppendWire implements Message.
func (r *ReadDtabReq) AppendWire(b []byte) []byte { return appendString(b, 1, r.Text) }

// AppendWire implements Message.
func (r *ReadDtabRsp) AppendWire(b []byte) []byte { return appendDtab(b, 1, r.Dtab) }

// AppendWire implements Message.
func (r *ShowDtabReq) AppendWire(b []byte) []byte { return appendDtab(b, 1, r.Dtab) }

// AppendWire implements Message.
func (r *ShowDtabRsp) AppendWire(b []byte) []byte { return appendString(b, 1, r.Text) }

// AppendWire implements Message.
func (r *ReadPathReq) AppendWire(b []byte) []byte { return appendString(b, 1, r.Text) }

// AppendWire implements Message.
func (r *ReadPathRsp) AppendWire(b []byte) []byte { return appendPath(b, 1, r.Path) }

// AppendWire implements Message.
func (r *ShowPathReq) AppendWire(b []byte) []byte { return appendPath(b, 1, r.Path) }

// AppendWire implements Message.
func (r *ShowPathRsp) AppendWire(b []byte) []byte { return appendString(b, 1, r.Text) }

// ---- decoding ----

// errTooDeep is returned for trees nested beyond MaxTreeDepth.
var errTooDeep = fmt.Errorf("tree nested deeper than %d levels", MaxTreeDepth)

// field is one decoded field: the payload of a length-delimited field, or
// the value of a varint or fixed one.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   []byte
	x   uint64
}

// each calls f for every field of b, in order. Groups are skipped.
func each(b []byte, f func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		fl := field{num: num, typ: typ}
		switch typ {
		case protowire.BytesType:
			fl.v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			fl.x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			fl.x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			fl.x = uint64(y)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(fl); err != nil {
			return err
		}
	}
	return nil
}

// bytes returns the payload of a length-delimited field.
func (f field) bytes() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, fmt.Errorf("field %d: wire type %d, want length-delimited", f.num, f.typ)
	}
	return f.v, nil
}

func (f field) str() (string, error) {
	v, err := f.bytes()
	return string(v), err
}

func (f field) varint() (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, fmt.Errorf("field %d: wire type %d, want varint", f.num, f.typ)
	}
	return f.x, nil
}

func (f field) double() (float64, error) {
	if f.typ != protowire.Fixed64Type {
		return 0, fmt.Errorf("field %d: wire type %d, want 64-bit", f.num, f.typ)
	}
	return math.Float64frombits(f.x), nil
}

// UnmarshalWire implements Message.
func (p *Path) UnmarshalWire(b []byte) error {
	*p = Path{}
	return each(b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.bytes()
		p.Elems = append(p.Elems, append([]byte{}, v...))
		return err
	})
}

func decodePath(f field) (*Path, error) {
	v, err := f.bytes()
	if err != nil {
		return nil, err
	}
	p := new(Path)
	return p, p.UnmarshalWire(v)
}

// UnmarshalWire implements Message.
func (t *NameTree) UnmarshalWire(b []byte) error { return t.decode(b, 0) }

func (t *NameTree) decode(b []byte, depth int) error {
	if depth > MaxTreeDepth {
		return errTooDeep
	}
	*t = NameTree{}
	return each(b, func(f field) error {
		if f.num < 1 || f.num > 6 {
			return nil
		}
		v, err := f.bytes()
		if err != nil {
			return err
		}
		*t = NameTree{} // a oneof: the last member wins
		switch f.num {
		case 1:
			t.Kind = TreeNeg
		case 2:
			t.Kind = TreeFail
		case 3:
			t.Kind = TreeEmpty
		case 4:
			t.Kind = TreeAlt
			return each(v, func(f field) error {
				if f.num != 1 {
					return nil
				}
				v, err := f.bytes()
				if err != nil {
					return err
				}
				var c NameTree
				if err := c.decode(v, depth+1); err != nil {
					return err
				}
				t.Alt = append(t.Alt, c)
				return nil
			})
		case 5:
			t.Kind = TreeUnion
			return each(v, func(f field) error {
				if f.num != 1 {
					return nil
				}
				v, err := f.bytes()
				if err != nil {
					return err
				}
				var w Weighted
				err = each(v, func(f field) error {
					switch f.num {
					case 1:
						var err error
						w.Weight, err = f.double()
						return err
					case 2:
						v, err := f.bytes()
						if err != nil {
							return err
						}
						w.Tree = new(NameTree)
						return w.Tree.decode(v, depth+1)
					}
					return nil
				})
				t.Union = append(t.Union, w)
				return err
			})
		case 6:
			t.Kind = TreeLeaf
			t.Leaf = new(Leaf)
			return t.Leaf.UnmarshalWire(v)
		}
		return nil
	})
}

// UnmarshalWire implements Message.
func (l *Leaf) UnmarshalWire(b []byte) error {
	*l = Leaf{}
	return each(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			l.ID, err = decodePath(f)
		case 2:
			l.Residual, err = decodePath(f)
		}
		return err
	})
}

// UnmarshalWire implements Message.
func (d *Dtab) UnmarshalWire(b []byte) error { return d.decode(b, 0) }

func (d *Dtab) decode(b []byte, depth int) error {
	*d = Dtab{}
	return each(b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.bytes()
		if err != nil {
			return err
		}
		var e Dentry
		if err := e.decode(v, depth); err != nil {
			return err
		}
		d.Dentries = append(d.Dentries, e)
		return nil
	})
}

func decodeDtab(f field, depth int) (*Dtab, error) {
	v, err := f.bytes()
	if err != nil {
		return nil, err
	}
	d := new(Dtab)
	return d, d.decode(v, depth)
}

// UnmarshalWire implements Message.
func (d *Dentry) UnmarshalWire(b []byte) error { return d.decode(b, 0) }

func (d *Dentry) decode(b []byte, depth int) error {
	*d = Dentry{}
	return each(b, func(f field) error {
		switch f.num {
		case 1:
			v, err := f.bytes()
			if err != nil {
				return err
			}
			d.Prefix = &Prefix{}
			return each(v, func(f field) error {
				if f.num != 1 {
					return nil
				}
				v, err := f.bytes()
				if err != nil {
					return err
				}
				var e PrefixElem
				err = each(v, func(f field) error {
					switch f.num {
					case 1:
						v, err := f.bytes()
						e = PrefixElem{Label: append([]byte{}, v...), Set: true}
						return err
					case 2:
						_, err := f.bytes()
						e = PrefixElem{Wildcard: true, Set: true}
						return err
					}
					return nil
				})
				d.Prefix.Elems = append(d.Prefix.Elems, e)
				return err
			})
		case 2:
			v, err := f.bytes()
			if err != nil {
				return err
			}
			d.Dst = new(NameTree)
			return d.Dst.decode(v, depth+1)
		}
		return nil
	})
}

// UnmarshalWire implements Message.
func (v *VersionedDtab) UnmarshalWire(b []byte) error {
	*v = VersionedDtab{}
	return each(b, func(f field) error {
		switch f.num {
		case 1:
			x, err := f.bytes()
			if err != nil {
				return err
			}
			id := []byte{}
			v.Version = &id
			return each(x, func(f field) error {
				if f.num != 1 {
					return nil
				}
				x, err := f.bytes()
				id = append(id[:0], x...)
				return err
			})
		case 2:
			var err error
			v.Dtab, err = decodeDtab(f, 0)
			return err
		}
		return nil
	})
}

// UnmarshalWire implements Message.
func (r *BindReq) UnmarshalWire(b []byte) error {
	*r = BindReq{}
	return each(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			r.Root, err = decodePath(f)
		case 2:
			r.Name, err = decodePath(f)
		case 3:
			r.Dtab, err = decodeDtab(f, 0)
		}
		return err
	})
}

func decodeTree(f field) (*NameTree, error) {
	v, err := f.bytes()
	if err != nil {
		return nil, err
	}
	t := new(NameTree)
	return t, t.decode(v, 0)
}

// UnmarshalWire implements Message.
func (r *BoundTreeRsp) UnmarshalWire(b []byte) error {
	*r = BoundTreeRsp{}
	return each(b, func(f field) error {
		var err error
		if f.num == 1 {
			r.Tree, err = decodeTree(f)
		}
		return err
	})
}

// UnmarshalWire implements Message.
func (r *ReplicasReq) UnmarshalWire(b []byte) error {
	*r = ReplicasReq{}
	return each(b, func(f field) error {
		var err error
		if f.num == 1 {
			r.ID, err = decodePath(f)
		}
		return err
	})
}

// decodeMapEntry adds a map<string, string> entry to *m.
func decodeMapEntry(f field, m *map[string]string) error {
	v, err := f.bytes()
	if err != nil {
		return err
	}
	var k, val string
	err = each(v, func(f field) error {
		var err error
		switch f.num {
		case 1:
			k, err = f.str()
		case 2:
			val, err = f.str()
		}
		return err
	})
	if err != nil {
		return err
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = val
	return nil
}

// UnmarshalWire implements Message.
func (e *Endpoint) UnmarshalWire(b []byte) error {
	*e = Endpoint{}
	return each(b, func(f field) error {
		switch f.num {
		case 1, 3:
			x, err := f.varint()
			if f.num == 1 {
				e.InetAF = int32(x)
			} else {
				e.Port = int32(x)
			}
			return err
		case 2:
			v, err := f.bytes()
			e.Address = append([]byte{}, v...)
			return err
		case 4:
			v, err := f.bytes()
			if err != nil {
				return err
			}
			e.Meta = &EndpointMeta{}
			return each(v, func(f field) error {
				var err error
				if f.num == 1 {
					e.Meta.NodeName, err = f.str()
				}
				return err
			})
		case 5:
			return decodeMapEntry(f, &e.Metadata)
		}
		return nil
	})
}

// UnmarshalWire implements Message.
func (r *Replicas) UnmarshalWire(b []byte) error {
	*r = Replicas{}
	return each(b, func(f field) error {
		if f.num < 1 || f.num > 4 {
			return nil
		}
		v, err := f.bytes()
		if err != nil {
			return err
		}
		*r = Replicas{}
		switch f.num {
		case 1:
			r.Kind = ReplicasPending
		case 2:
			r.Kind = ReplicasNeg
		case 3:
			r.Kind = ReplicasFailed
			return each(v, func(f field) error {
				var err error
				if f.num == 1 {
					r.Message, err = f.str()
				}
				return err
			})
		case 4:
			r.Kind = ReplicasBound
			return each(v, func(f field) error {
				switch f.num {
				case 1:
					v, err := f.bytes()
					if err != nil {
						return err
					}
					var e Endpoint
					if err := e.UnmarshalWire(v); err != nil {
						return err
					}
					r.Endpoints = append(r.Endpoints, e)
				case 2:
					return decodeMapEntry(f, &r.Metadata)
				}
				return nil
			})
		}
		return nil
	})
}

// UnmarshalWire implements Message.
func (r *DtabReq) UnmarshalWire(b []byte) error {
	*r = DtabReq{}
	return each(b, func(f field) error {
		var err error
		if f.num == 1 {
			r.Root, err = decodePath(f)
		}
		return err
	})
}

// UnmarshalWire implements Message.
func (r *DtabRsp) UnmarshalWire(b []byte) error {
	*r = DtabRsp{}
	return each(b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.bytes()
		if err != nil {
			return err
		}
		r.Dtab = new(VersionedDtab)
		return r.Dtab.UnmarshalWire(v)
	})
}

// UnmarshalWire implements Message.
func (r *DelegateTreeReq) UnmarshalWire(b []byte) error {
	*r = DelegateTreeReq{}
	return each(b, func(f field) error {
		var err error
		switch f.num {
		case 1:
			r.Root, err = decodePath(f)
		case 2:
			r.Tree, err = decodeTree(f)
		case 3:
			r.Dtab, err = decodeDtab(f, 0)
		}
		return err
	})
}

// UnmarshalWire implements Message.
func (r *DelegateTreeRsp) UnmarshalWire(b []byte) error {
	*r = DelegateTreeRsp{}
	return each(b, func(f field) error {
		if f.num != 1 {
			return nil
		}
		v, err := f.bytes()
		if err != nil {
			return err
		}
		r.Tree = new(DelegateTree)
		return r.Tree.decode(v, 0)
	})
}

// UnmarshalWire implements Message.
func (t *DelegateTree) UnmarshalWire(b []byte) error { return t.decode(b, 0) }

func (t *DelegateTree) decode(b []byte, depth int) error {
	if depth > MaxTreeDepth {
		return errTooDeep
	}
	*t = DelegateTree{}
	sub := func(v []byte) (*DelegateTree, error) {
		c := new(DelegateTree)
		return c, c.decode(v, depth+1)
	}
	return each(b, func(f field) error {
		switch f.num {
		case 1:
			var err error
			t.Path, err = decodePath(f)
			return err
		case 2:
			v, err := f.bytes()
			if err != nil {
				return err
			}
			t.Dentry = new(Dentry)
			return t.Dentry.decode(v, depth)
		}
		if f.num < 3 || f.num > 11 {
			return nil
		}
		v, err := f.bytes()
		if err != nil {
			return err
		}
		// A oneof: the last member wins.
		t.Kind, t.Alt, t.Union, t.Leaf, t.Delegate, t.Transformation, t.Exception = TreeNone, nil, nil, nil, nil, nil, ""
		switch f.num {
		case 3:
			t.Kind = TreeNeg
		case 4:
			t.Kind = TreeFail
		case 5:
			t.Kind = TreeEmpty
		case 6:
			t.Kind = TreeAlt
			return each(v, func(f field) error {
				if f.num != 1 {
					return nil
				}
				v, err := f.bytes()
				if err != nil {
					return err
				}
				c, err := sub(v)
				if err != nil {
					return err
				}
				t.Alt = append(t.Alt, *c)
				return nil
			})
		case 7:
			t.Kind = TreeUnion
			return each(v, func(f field) error {
				if f.num != 1 {
					return nil
				}
				v, err := f.bytes()
				if err != nil {
					return err
				}
				var w DelegateWeighted
				err = each(v, func(f field) error {
					switch f.num {
					case 1:
						var err error
						w.Weight, err = f.double()
						return err
					case 2:
						v, err := f.bytes()
						if err != nil {
							return err
						}
						w.Tree, err = sub(v)
						return err
					}
					return nil
				})
				t.Union = append(t.Union, w)
				return err
			})
		case 8:
			t.Kind = TreeLeaf
			t.Leaf = new(Leaf)
			return t.Leaf.UnmarshalWire(v)
		case 9:
			t.Kind = TreeDelegate
			t.Delegate, err = sub(v)
			return err
		case 10:
			t.Kind = TreeTransformation
			tr := &Transformation{}
			t.Transformation = tr
			return each(v, func(f field) error {
				var err error
				switch f.num {
				case 1:
					tr.Name, err = f.str()
				case 2:
					var v []byte
					if v, err = f.bytes(); err == nil {
						tr.Leaf = new(Leaf)
						err = tr.Leaf.UnmarshalWire(v)
					}
				case 3:
					var v []byte
					if v, err = f.bytes(); err == nil {
						tr.Tree, err = sub(v)
					}
				}
				return err
			})
		case 11:
			t.Kind = TreeException
			t.Exception = string(v)
		}
		return nil
	})
}

func decodeText(b []byte) (string, error) {
	var s string
	err := each(b, func(f field) error {
		var err error
		if f.num == 1 {
			s, err = f.str()
		}
		return err
	})
	return s, err
}

func decodeOnlyDtab(b []byte) (*Dtab, error) {
	var d *Dtab
	err := each(b, func(f field) error {
		var err error
		if f.num == 1 {
			d, err = decodeDtab(f, 0)
		}
		return err
	})
	return d, err
}

func decodeOnlyPath(b []byte) (*Path, error) {
	var p *Path
	err := each(b, func(f field) error {
		var err error
		if f.num == 1 {
			p, err = decodePath(f)
		}
		return err
	})
	return p, err
}

// UnmarshalWire implements Message.
func (r *ReadDtabReq) UnmarshalWire(b []byte) (err error) { r.Text, err = decodeText(b); return }

// UnmarshalWire implements Message.
func (r *ReadDtabRsp) UnmarshalWire(b []byte) (err error) { r.Dtab, err = decodeOnlyDtab(b); return }

// UnmarshalWire implements Message.
func (r *ShowDtabReq) UnmarshalWire(b []byte) (err error) { r.Dtab, err = decodeOnlyDtab(b); return }

// UnmarshalWire implements Message.
func (r *ShowDtabRsp) UnmarshalWire(b []byte) (err error) { r.Text, err = decodeText(b); return }

// UnmarshalWire implements Message.
func (r *ReadPathReq) UnmarshalWire(b []byte) (err error) { r.Text, err = decodeText(b); return }

// UnmarshalWire implements Message.
func (r *ReadPathRsp) UnmarshalWire(b []byte) (err error) { r.Path, err = decodeOnlyPath(b); return }

// UnmarshalWire implements Message.
func (r *ShowPathReq) UnmarshalWire(b []byte) (err error) { r.Path, err = decodeOnlyPath(b); return }

// UnmarshalWire implements Message.
func (r *ShowPathRsp) UnmarshalWire(b []byte) (err error) { r.Text, err = decodeText(b); return }

// errNotMessage is the codec's error for a value of another type.
var errNotMessage = errors.New("mesh codec: value is not an io.linkerd.mesh message")
