package thrift

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
)

// The messages of namer.thrift (Linkerd 1.x, namerd/iface/interpreter-thrift-idl).
// Field ids and types follow the IDL; paths are list<binary>, stamps binary.

// NameRef references a version (stamp) of a name in a namespace.
type NameRef struct {
	Stamp []byte   // 1: binary
	Name  [][]byte // 2: list<binary>
	Ns    string   // 3: string
}

// BindReq is bind's argument.
type BindReq struct {
	Dtab     string   // 1: string (dtab text)
	Name     NameRef  // 2: NameRef
	ClientID [][]byte // 3: list<binary>
}

// BoundName is a bound leaf: its id and residual path.
type BoundName struct {
	ID       [][]byte // 1
	Residual [][]byte // 2
}

// WeightedNodeID is one branch of a weighted union.
type WeightedNodeID struct {
	Weight float64 // 1: double
	ID     int32   // 2: i32
}

// NodeKind is which member of the BoundNode union is set (its field id).
type NodeKind int16

// BoundNode union members.
const (
	NodeNeg      NodeKind = 1
	NodeEmpty    NodeKind = 2
	NodeFail     NodeKind = 3
	NodeLeaf     NodeKind = 4
	NodeAlt      NodeKind = 5
	NodeWeighted NodeKind = 6
)

// BoundNode is a union: exactly one of neg, empty, fail (Void), leaf, alt
// (node ids) or weighted.
type BoundNode struct {
	Kind     NodeKind
	Leaf     BoundName
	Alt      []int32
	Weighted []WeightedNodeID
}

// BoundTree is a name tree flattened into numbered nodes.
type BoundTree struct {
	Root  BoundNode           // 1
	Nodes map[int32]BoundNode // 2: map<i32, BoundNode>
}

// Bound is bind's answer.
type Bound struct {
	Stamp []byte    // 1
	Tree  BoundTree // 2
	Ns    string    // 3
}

// BindFailure is bind's declared exception.
type BindFailure struct {
	Reason         string  // 1
	RetryInSeconds int32   // 2 (Linkerd routers wait this long before retrying)
	Name           NameRef // 3
	Ns             string  // 4
}

func (e *BindFailure) Error() string { return "bind failure: " + e.Reason }

// AddrReq is addr's argument; Name.Name is a bound id.
type AddrReq struct {
	Name     NameRef  // 1
	ClientID [][]byte // 2
}

// AddrMeta is optional address metadata.
type AddrMeta struct {
	Authority *string  // 1: optional string
	NodeName  *string  // 2: optional string
	Weight    *float64 // 3: optional double endpoint_addr_weight
}

// TransportAddress is one endpoint.
type TransportAddress struct {
	IP   []byte    // 1: binary, 4 or 16 bytes
	Port int32     // 2: i32
	Meta *AddrMeta // 3: optional
}

// BoundAddr is a bound address set.
type BoundAddr struct {
	Addresses []TransportAddress // 1: set<TransportAddress>
	Meta      *AddrMeta          // 2: optional
}

// Addr is addr's answer; a nil Bound is the AddrVal union's `neg`.
type Addr struct {
	Stamp []byte     // 1
	Bound *BoundAddr // 2: AddrVal {1: BoundAddr bound, 2: Void neg}
}

// AddrFailure is addr's declared exception.
type AddrFailure struct {
	Reason         string  // 1
	RetryInSeconds int32   // 2
	Name           NameRef // 3
}

func (e *AddrFailure) Error() string { return "addr failure: " + e.Reason }

// DtabReq is dtab's argument.
type DtabReq struct {
	Stamp    []byte   // 1
	Ns       string   // 2
	ClientID [][]byte // 3
}

// DtabRef is dtab's answer.
type DtabRef struct {
	Stamp []byte // 1
	Dtab  string // 2
}

// DtabFailure is dtab's declared exception.
type DtabFailure struct {
	Reason string // 1
}

func (e *DtabFailure) Error() string { return "dtab failure: " + e.Reason }

// DelegationFailure is delegate's declared exception.
type DelegationFailure struct {
	Reason string // 1
}

func (e *DelegationFailure) Error() string { return "delegation failure: " + e.Reason }

// Method names of the Namer service.
const (
	MethodBind     = "bind"
	MethodAddr     = "addr"
	MethodDelegate = "delegate"
	MethodDtab     = "dtab"
)

// ---- encoding ----

// enc writes with a protocol, keeping the first error.
type enc struct {
	ctx context.Context
	p   thrift.TProtocol
	err error
}

func (e *enc) keep(err error) {
	if e.err == nil && err != nil {
		e.err = err
	}
}

func (e *enc) field(id int16, t thrift.TType) { e.keep(e.p.WriteFieldBegin(e.ctx, "", t, id)) }
func (e *enc) begin()                         { e.keep(e.p.WriteStructBegin(e.ctx, "")) }
func (e *enc) end()                           { e.keep(e.p.WriteFieldStop(e.ctx)) }
func (e *enc) bin(id int16, b []byte) {
	e.field(id, thrift.STRING)
	if b == nil {
		b = []byte{}
	}
	e.keep(e.p.WriteBinary(e.ctx, b))
}
func (e *enc) str(id int16, s string) {
	e.field(id, thrift.STRING)
	e.keep(e.p.WriteString(e.ctx, s))
}
func (e *enc) i32(id int16, v int32) {
	e.field(id, thrift.I32)
	e.keep(e.p.WriteI32(e.ctx, v))
}
func (e *enc) double(id int16, v float64) {
	e.field(id, thrift.DOUBLE)
	e.keep(e.p.WriteDouble(e.ctx, v))
}
func (e *enc) path(id int16, p [][]byte) {
	e.field(id, thrift.LIST)
	e.keep(e.p.WriteListBegin(e.ctx, thrift.STRING, len(p)))
	for _, s := range p {
		e.keep(e.p.WriteBinary(e.ctx, s))
	}
}
func (e *enc) void(id int16) {
	e.field(id, thrift.STRUCT)
	e.begin()
	e.end()
}

func (e *enc) nameRef(id int16, r NameRef) {
	e.field(id, thrift.STRUCT)
	e.begin()
	e.bin(1, r.Stamp)
	e.path(2, r.Name)
	e.str(3, r.Ns)
	e.end()
}

func (e *enc) boundName(id int16, b BoundName) {
	e.field(id, thrift.STRUCT)
	e.begin()
	e.path(1, b.ID)
	e.path(2, b.Residual)
	e.end()
}

func (e *enc) boundNode(n BoundNode) {
	e.begin()
	switch n.Kind {
	case NodeNeg, NodeEmpty, NodeFail:
		e.void(int16(n.Kind))
	case NodeLeaf:
		e.boundName(4, n.Leaf)
	case NodeAlt:
		e.field(5, thrift.LIST)
		e.keep(e.p.WriteListBegin(e.ctx, thrift.I32, len(n.Alt)))
		for _, id := range n.Alt {
			e.keep(e.p.WriteI32(e.ctx, id))
		}
	case NodeWeighted:
		e.field(6, thrift.LIST)
		e.keep(e.p.WriteListBegin(e.ctx, thrift.STRUCT, len(n.Weighted)))
		for _, w := range n.Weighted {
			e.begin()
			e.double(1, w.Weight)
			e.i32(2, w.ID)
			e.end()
		}
	default:
		e.keep(fmt.Errorf("bound node kind %d is not a BoundNode member", n.Kind))
	}
	e.end()
}

func (e *enc) addrMeta(id int16, m *AddrMeta) {
	if m == nil {
		return
	}
	e.field(id, thrift.STRUCT)
	e.begin()
	if m.Authority != nil {
		e.str(1, *m.Authority)
	}
	if m.NodeName != nil {
		e.str(2, *m.NodeName)
	}
	if m.Weight != nil {
		e.double(3, *m.Weight)
	}
	e.end()
}

// Write encodes the struct (the method's argument or result value).
func (r *BindReq) write(e *enc) {
	e.begin()
	e.str(1, r.Dtab)
	e.nameRef(2, r.Name)
	e.path(3, r.ClientID)
	e.end()
}

func (b *Bound) write(e *enc) {
	e.begin()
	e.bin(1, b.Stamp)
	e.field(2, thrift.STRUCT)
	writeTree(e, b.Tree.Root, b.Tree.Nodes, e.boundNode)
	e.str(3, b.Ns)
	e.end()
}

func (f *BindFailure) write(e *enc) {
	e.begin()
	e.str(1, f.Reason)
	e.i32(2, f.RetryInSeconds)
	e.nameRef(3, f.Name)
	e.str(4, f.Ns)
	e.end()
}

func (r *AddrReq) write(e *enc) {
	e.begin()
	e.nameRef(1, r.Name)
	e.path(2, r.ClientID)
	e.end()
}

func (a *Addr) write(e *enc) {
	e.begin()
	e.bin(1, a.Stamp)
	e.field(2, thrift.STRUCT)
	e.begin() // AddrVal
	if a.Bound == nil {
		e.void(2)
	} else {
		e.field(1, thrift.STRUCT)
		e.begin()
		e.field(1, thrift.SET)
		e.keep(e.p.WriteSetBegin(e.ctx, thrift.STRUCT, len(a.Bound.Addresses)))
		for _, ta := range a.Bound.Addresses {
			e.begin()
			e.bin(1, ta.IP)
			e.i32(2, ta.Port)
			e.addrMeta(3, ta.Meta)
			e.end()
		}
		e.addrMeta(2, a.Bound.Meta)
		e.end()
	}
	e.end()
	e.end()
}

func (f *AddrFailure) write(e *enc) {
	e.begin()
	e.str(1, f.Reason)
	e.i32(2, f.RetryInSeconds)
	e.nameRef(3, f.Name)
	e.end()
}

func (r *DtabReq) write(e *enc) {
	e.begin()
	e.bin(1, r.Stamp)
	e.str(2, r.Ns)
	e.path(3, r.ClientID)
	e.end()
}

func (d *DtabRef) write(e *enc) {
	e.begin()
	e.bin(1, d.Stamp)
	e.str(2, d.Dtab)
	e.end()
}

func (f *DtabFailure) write(e *enc) {
	e.begin()
	e.str(1, f.Reason)
	e.end()
}

func (f *DelegationFailure) write(e *enc) {
	e.begin()
	e.str(1, f.Reason)
	e.end()
}

// ---- decoding ----

// dec reads with a protocol. Unknown fields, and known fields of an
// unexpected type, are skipped, as generated Thrift code does.
type dec struct {
	ctx   context.Context
	p     thrift.TProtocol
	depth int
}

// maxDepth bounds struct nesting (the IDL nests at most 5 deep).
const maxDepth = 16

var errDepth = errors.New("structs nested too deeply")

// structFields reads a struct, calling f for each field; f returns false
// for a field it does not know (which is then skipped).
func (d *dec) structFields(f func(id int16, t thrift.TType) (bool, error)) error {
	if d.depth++; d.depth > maxDepth {
		return errDepth
	}
	defer func() { d.depth-- }()
	if _, err := d.p.ReadStructBegin(d.ctx); err != nil {
		return err
	}
	for {
		_, t, id, err := d.p.ReadFieldBegin(d.ctx)
		if err != nil {
			return err
		}
		if t == thrift.STOP {
			break
		}
		ok, err := f(id, t)
		if err != nil {
			return err
		}
		if !ok {
			if err := thrift.SkipDefaultDepth(d.ctx, d.p, t); err != nil {
				return err
			}
		}
		if err := d.p.ReadFieldEnd(d.ctx); err != nil {
			return err
		}
	}
	return d.p.ReadStructEnd(d.ctx)
}

func (d *dec) path() ([][]byte, error) {
	et, n, err := d.p.ReadListBegin(d.ctx)
	if err != nil {
		return nil, err
	}
	if et != thrift.STRING {
		return nil, fmt.Errorf("path: list of %s, want binary", et)
	}
	out := make([][]byte, 0, min(n, 64))
	for range n {
		b, err := d.p.ReadBinary(d.ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, d.p.ReadListEnd(d.ctx)
}

func (d *dec) nameRef(r *NameRef) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			r.Stamp, err = d.p.ReadBinary(d.ctx)
		case id == 2 && t == thrift.LIST:
			r.Name, err = d.path()
		case id == 3 && t == thrift.STRING:
			r.Ns, err = d.p.ReadString(d.ctx)
		default:
			return false, nil
		}
		return true, err
	})
}

func (d *dec) boundName(b *BoundName) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.LIST:
			b.ID, err = d.path()
		case id == 2 && t == thrift.LIST:
			b.Residual, err = d.path()
		default:
			return false, nil
		}
		return true, err
	})
}

func (d *dec) boundNode(n *BoundNode) error {
	set := 0
	err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id >= 1 && id <= 3 && t == thrift.STRUCT:
			n.Kind = NodeKind(id)
			set++
			return true, d.structFields(func(int16, thrift.TType) (bool, error) { return false, nil })
		case id == 4 && t == thrift.STRUCT:
			n.Kind = NodeLeaf
			set++
			return true, d.boundName(&n.Leaf)
		case id == 5 && t == thrift.LIST:
			n.Kind = NodeAlt
			set++
			et, size, err := d.p.ReadListBegin(d.ctx)
			if err != nil {
				return true, err
			}
			if et != thrift.I32 {
				return true, fmt.Errorf("alt: list of %s, want i32", et)
			}
			n.Alt = make([]int32, 0, min(size, 64))
			for range size {
				v, err := d.p.ReadI32(d.ctx)
				if err != nil {
					return true, err
				}
				n.Alt = append(n.Alt, v)
			}
			return true, d.p.ReadListEnd(d.ctx)
		case id == 6 && t == thrift.LIST:
			n.Kind = NodeWeighted
			set++
			et, size, err := d.p.ReadListBegin(d.ctx)
			if err != nil {
				return true, err
			}
			if et != thrift.STRUCT {
				return true, fmt.Errorf("weighted: list of %s, want struct", et)
			}
			n.Weighted = make([]WeightedNodeID, 0, min(size, 64))
			for range size {
				var w WeightedNodeID
				err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
					var err error
					switch {
					case id == 1 && t == thrift.DOUBLE:
						w.Weight, err = d.p.ReadDouble(d.ctx)
					case id == 2 && t == thrift.I32:
						w.ID, err = d.p.ReadI32(d.ctx)
					default:
						return false, nil
					}
					return true, err
				})
				if err != nil {
					return true, err
				}
				n.Weighted = append(n.Weighted, w)
			}
			return true, d.p.ReadListEnd(d.ctx)
		}
		return false, nil
	})
	if err == nil && set != 1 {
		err = fmt.Errorf("BoundNode union has %d members set, want 1", set)
	}
	return err
}

func (d *dec) addrMeta() (*AddrMeta, error) {
	m := &AddrMeta{}
	err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 1 && t == thrift.STRING:
			s, err := d.p.ReadString(d.ctx)
			m.Authority = &s
			return true, err
		case id == 2 && t == thrift.STRING:
			s, err := d.p.ReadString(d.ctx)
			m.NodeName = &s
			return true, err
		case id == 3 && t == thrift.DOUBLE:
			v, err := d.p.ReadDouble(d.ctx)
			m.Weight = &v
			return true, err
		}
		return false, nil
	})
	return m, err
}

func (r *BindReq) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			r.Dtab, err = d.p.ReadString(d.ctx)
		case id == 2 && t == thrift.STRUCT:
			err = d.nameRef(&r.Name)
		case id == 3 && t == thrift.LIST:
			r.ClientID, err = d.path()
		default:
			return false, nil
		}
		return true, err
	})
}

func (b *Bound) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			b.Stamp, err = d.p.ReadBinary(d.ctx)
		case id == 2 && t == thrift.STRUCT:
			err = readTree(d, &b.Tree.Root, &b.Tree.Nodes, d.boundNode)
		case id == 3 && t == thrift.STRING:
			b.Ns, err = d.p.ReadString(d.ctx)
		default:
			return false, nil
		}
		return true, err
	})
}

func (f *BindFailure) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			f.Reason, err = d.p.ReadString(d.ctx)
		case id == 2 && t == thrift.I32:
			f.RetryInSeconds, err = d.p.ReadI32(d.ctx)
		case id == 3 && t == thrift.STRUCT:
			err = d.nameRef(&f.Name)
		case id == 4 && t == thrift.STRING:
			f.Ns, err = d.p.ReadString(d.ctx)
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *AddrReq) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRUCT:
			err = d.nameRef(&r.Name)
		case id == 2 && t == thrift.LIST:
			r.ClientID, err = d.path()
		default:
			return false, nil
		}
		return true, err
	})
}

func (a *Addr) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 1 && t == thrift.STRING:
			var err error
			a.Stamp, err = d.p.ReadBinary(d.ctx)
			return true, err
		case id == 2 && t == thrift.STRUCT:
			set := 0
			err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
				switch {
				case id == 1 && t == thrift.STRUCT:
					set++
					a.Bound = &BoundAddr{}
					return true, a.Bound.read(d)
				case id == 2 && t == thrift.STRUCT:
					set++
					a.Bound = nil
					return true, d.structFields(func(int16, thrift.TType) (bool, error) { return false, nil })
				}
				return false, nil
			})
			if err == nil && set != 1 {
				err = fmt.Errorf("AddrVal union has %d members set, want 1", set)
			}
			return true, err
		}
		return false, nil
	})
}

func (b *BoundAddr) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		switch {
		case id == 1 && (t == thrift.SET || t == thrift.LIST):
			et, n, err := d.p.ReadSetBegin(d.ctx)
			if err != nil {
				return true, err
			}
			if et != thrift.STRUCT {
				return true, fmt.Errorf("addresses: set of %s, want struct", et)
			}
			b.Addresses = make([]TransportAddress, 0, min(n, 256))
			for range n {
				var ta TransportAddress
				err := d.structFields(func(id int16, t thrift.TType) (bool, error) {
					var err error
					switch {
					case id == 1 && t == thrift.STRING:
						ta.IP, err = d.p.ReadBinary(d.ctx)
					case id == 2 && t == thrift.I32:
						ta.Port, err = d.p.ReadI32(d.ctx)
					case id == 3 && t == thrift.STRUCT:
						ta.Meta, err = d.addrMeta()
					default:
						return false, nil
					}
					return true, err
				})
				if err != nil {
					return true, err
				}
				b.Addresses = append(b.Addresses, ta)
			}
			return true, d.p.ReadSetEnd(d.ctx)
		case id == 2 && t == thrift.STRUCT:
			var err error
			b.Meta, err = d.addrMeta()
			return true, err
		}
		return false, nil
	})
}

func (f *AddrFailure) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			f.Reason, err = d.p.ReadString(d.ctx)
		case id == 2 && t == thrift.I32:
			f.RetryInSeconds, err = d.p.ReadI32(d.ctx)
		case id == 3 && t == thrift.STRUCT:
			err = d.nameRef(&f.Name)
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *DtabReq) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			r.Stamp, err = d.p.ReadBinary(d.ctx)
		case id == 2 && t == thrift.STRING:
			r.Ns, err = d.p.ReadString(d.ctx)
		case id == 3 && t == thrift.LIST:
			r.ClientID, err = d.path()
		default:
			return false, nil
		}
		return true, err
	})
}

func (r *DtabRef) read(d *dec) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		var err error
		switch {
		case id == 1 && t == thrift.STRING:
			r.Stamp, err = d.p.ReadBinary(d.ctx)
		case id == 2 && t == thrift.STRING:
			r.Dtab, err = d.p.ReadString(d.ctx)
		default:
			return false, nil
		}
		return true, err
	})
}

// readReason reads a one-string-field exception (DtabFailure,
// DelegationFailure).
func readReason(d *dec, reason *string) error {
	return d.structFields(func(id int16, t thrift.TType) (bool, error) {
		if id == 1 && t == thrift.STRING {
			var err error
			*reason, err = d.p.ReadString(d.ctx)
			return true, err
		}
		return false, nil
	})
}
