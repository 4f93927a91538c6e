// Package api holds the wire format of namerd's HTTP control API
// (io.l5d.httpController, spec/namerd-api.md): URL paths, media types and
// the JSON shapes of dentries, addresses and bound trees, with field order
// and number formatting identical to Linkerd 1.x so outputs can be compared
// byte for byte. It has no logic beyond encoding and decoding.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// URL paths of the API (all relative to the interface root).
const (
	Prefix         = "/api/1/"
	DtabsPath      = "/api/1/dtabs"
	BindPath       = "/api/1/bind"
	AddrPath       = "/api/1/addr"
	ResolvePath    = "/api/1/resolve"
	DelegatePath   = "/api/1/delegate"
	BoundNamesPath = "/api/1/bound-names"
)

// Media types of dtab representations.
const (
	MediaJSON = "application/json"
	MediaDtab = "application/dtab"
	MediaText = "text/plain"
)

// Dentry is the JSON form of one dtab entry: printed prefix and tree.
type Dentry struct {
	Prefix string `json:"prefix"`
	Dst    string `json:"dst"`
}

// DentriesOf converts a dtab to its JSON form (never nil, so it encodes as
// [] when empty).
func DentriesOf(d dtab.Dtab) []Dentry {
	out := make([]Dentry, len(d))
	for i, e := range d {
		out[i] = Dentry{Prefix: e.Prefix.String(), Dst: dtab.ShowTree(e.Dst)}
	}
	return out
}

// ErrNullDentry is returned by ParseDentries for a JSON null element.
var ErrNullDentry = errors.New("the dtab contains invalid dentries")

// ParseDentries decodes a JSON dentry array and parses each entry.
func ParseDentries(body []byte) (dtab.Dtab, error) {
	var raw []*Dentry
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("unexpected data after the dentry array")
	}
	d := make(dtab.Dtab, 0, len(raw))
	for i, e := range raw {
		if e == nil {
			return nil, ErrNullDentry
		}
		p, err := dtab.ParsePrefix(e.Prefix)
		if err != nil {
			return nil, fmt.Errorf("dentry %d: prefix: %w", i, err)
		}
		t, err := dtab.ParseTree(e.Dst)
		if err != nil {
			return nil, fmt.Errorf("dentry %d: dst: %w", i, err)
		}
		d = append(d, dtab.Dentry{Prefix: p, Dst: t})
	}
	return d, nil
}

// Address is one endpoint of a bound address set.
type Address struct {
	IP   string         `json:"ip"`
	Port int            `json:"port"`
	Meta map[string]any `json:"meta"`
}

// Address set types.
const (
	AddrBound   = "bound"
	AddrNeg     = "neg"
	AddrFailed  = "failed"
	AddrPending = "pending"
)

// Addr is an address set: {"type":"bound","addrs":[...],"meta":{}},
// {"type":"neg"}, {"type":"failed","cause":"..."} or {"type":"pending"}.
type Addr struct {
	Type  string
	Addrs []Address      // bound
	Meta  map[string]any // bound
	Cause string         // failed
}

// MarshalJSON writes the fields of the type only, in Linkerd's order, with
// "addrs" and "meta" always present for a bound set.
func (a Addr) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	writeString(&b, a.Type)
	switch a.Type {
	case AddrBound:
		addrs := a.Addrs
		if addrs == nil {
			addrs = []Address{}
		}
		for i := range addrs {
			if addrs[i].Meta == nil {
				addrs = append([]Address(nil), addrs...)
				for j := range addrs {
					if addrs[j].Meta == nil {
						addrs[j].Meta = map[string]any{}
					}
				}
				break
			}
		}
		b.WriteString(`,"addrs":`)
		if err := writeJSON(&b, addrs); err != nil {
			return nil, err
		}
		b.WriteString(`,"meta":`)
		meta := a.Meta
		if meta == nil {
			meta = map[string]any{}
		}
		if err := writeJSON(&b, meta); err != nil {
			return nil, err
		}
	case AddrFailed:
		b.WriteString(`,"cause":`)
		writeString(&b, a.Cause)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Addr) UnmarshalJSON(data []byte) error {
	var w struct {
		Type  string         `json:"type"`
		Addrs []Address      `json:"addrs"`
		Meta  map[string]any `json:"meta"`
		Cause string         `json:"cause"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	switch w.Type {
	case AddrBound, AddrNeg, AddrFailed, AddrPending:
	default:
		return fmt.Errorf("unknown address type %q", w.Type)
	}
	*a = Addr{Type: w.Type, Addrs: w.Addrs, Meta: w.Meta, Cause: w.Cause}
	return nil
}

// Tree node types.
const (
	TreeLeaf      = "leaf"
	TreeNeg       = "neg"
	TreeFail      = "fail"
	TreeEmpty     = "empty"
	TreeAlt       = "alt"
	TreeUnion     = "union"
	TreeException = "exception"
	TreeDelegate  = "delegate"
)

// Bound is a leaf's bound name: its address, id and residual path.
type Bound struct {
	Addr Addr   `json:"addr"`
	ID   string `json:"id"`
	Path string `json:"path"`
}

// Tree is a bound tree as the bind endpoint renders it (no path or dentry
// fields): {"type":"leaf","bound":{...}}, {"type":"alt","alt":[...]},
// {"type":"union","union":[{"weight":0.9,"tree":{...}}]}, {"type":"neg"}...
type Tree struct {
	Type    string
	Bound   *Bound     // leaf
	Alt     []Tree     // alt
	Union   []Weighted // union
	Message string     // exception
}

// Weighted is one branch of a union.
type Weighted struct {
	Weight float64
	Tree   Tree
}

// MarshalJSON writes the node in Linkerd's field order; weights print like
// Java doubles (1.0, 0.9).
func (t Tree) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := t.write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (t Tree) write(b *bytes.Buffer) error {
	b.WriteString(`{"type":`)
	writeString(b, t.Type)
	switch t.Type {
	case TreeLeaf:
		if t.Bound == nil {
			return errors.New("leaf without a bound name")
		}
		b.WriteString(`,"bound":`)
		if err := writeJSON(b, t.Bound); err != nil {
			return err
		}
	case TreeAlt:
		b.WriteString(`,"alt":[`)
		for i, c := range t.Alt {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := c.write(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case TreeUnion:
		b.WriteString(`,"union":[`)
		for i, w := range t.Union {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"weight":`)
			b.WriteString(dtab.FormatWeightJSON(w.Weight))
			b.WriteString(`,"tree":`)
			if err := w.Tree.write(b); err != nil {
				return err
			}
			b.WriteByte('}')
		}
		b.WriteByte(']')
	case TreeException:
		b.WriteString(`,"message":`)
		writeString(b, t.Message)
	}
	b.WriteByte('}')
	return nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Tree) UnmarshalJSON(data []byte) error {
	var w struct {
		Type  string `json:"type"`
		Bound *Bound `json:"bound"`
		Alt   []Tree `json:"alt"`
		Union []struct {
			Weight json.RawMessage `json:"weight"`
			Tree   *Tree           `json:"tree"`
		} `json:"union"`
		Message  string `json:"message"`
		Delegate *Tree  `json:"delegate"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*t = Tree{Type: w.Type}
	switch w.Type {
	case TreeLeaf:
		if w.Bound == nil {
			return errors.New(`leaf without "bound"`)
		}
		if w.Bound.Addr.Type == "" {
			return errors.New(`leaf without "bound.addr"`)
		}
		t.Bound = w.Bound
	case TreeAlt:
		t.Alt = w.Alt
	case TreeUnion:
		t.Union = make([]Weighted, len(w.Union))
		for i, u := range w.Union {
			wt, err := parseWeight(u.Weight)
			if err != nil {
				return fmt.Errorf("union branch %d: %w", i, err)
			}
			if u.Tree == nil {
				return fmt.Errorf("union branch %d: no tree", i)
			}
			t.Union[i] = Weighted{Weight: wt, Tree: *u.Tree}
		}
	case TreeException:
		t.Message = w.Message
	case TreeNeg, TreeFail, TreeEmpty:
	default:
		return fmt.Errorf("unknown tree node type %q", w.Type)
	}
	return nil
}

// parseWeight accepts a JSON number or the strings Java uses for
// non-finite doubles.
func parseWeight(raw json.RawMessage) (float64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "NaN", "Infinity", "-Infinity":
			return strconv.ParseFloat(s, 64)
		}
		return 0, fmt.Errorf("invalid weight %q", s)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fmt.Errorf("invalid weight %s", raw)
	}
	return f, nil
}

// Marshal encodes v as compact JSON without a trailing newline and without
// escaping <, > and & (Linkerd's Jackson does not, and dtab unions contain &).
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.Truncate(b.Len() - 1) // Encode's newline
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	_ = writeJSON(b, s) // strings always encode
}

// Per-address metadata keys with a meaning (spec/namerd-api.md §6.1).
const (
	MetaWeight    = "endpoint_addr_weight"
	MetaAuthority = "authority"
	MetaNodeName  = "nodeName"
)
