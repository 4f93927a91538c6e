package naming

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// MetaWeightKey is the per-address metadata key Linkerd uses for an
// endpoint's weight (e.g. io.l5d.fs lines "host port * weight").
const MetaWeightKey = "endpoint_addr_weight"

// MarshalDelegateJSON encodes a delegation explanation as Linkerd's
// delegator does (spec/dtab.md §10.4): compact, keys in Linkerd's order.
func MarshalDelegateJSON(n DelegateNode) []byte {
	return appendDelegate(nil, &n)
}

// MarshalBoundTreeJSON encodes a bound tree as namerd's bind API does
// (spec/dtab.md §10.5), without a trailing newline. Each leaf's address set
// is taken from addrs when present there (e.g. snapshots taken while
// waiting for them to leave pending), otherwise from its Addr's Get.
func MarshalBoundTreeJSON(t BoundTree, addrs map[*Bound]Addr) []byte {
	return appendBoundTree(nil, t, addrs)
}

// MarshalAddrJSON encodes an address set (spec/dtab.md §10.4 ADDR,
// namerd-api.md §6.1). Addresses keep their order; metadata keys are
// sorted.
func MarshalAddrJSON(a Addr) []byte {
	return appendAddr(nil, a)
}

func appendDelegate(b []byte, n *DelegateNode) []byte {
	b = append(b, `{"type":`...)
	b = appendString(b, n.Kind.String())
	if n.Kind == DelegateTransformation {
		b = append(b, `,"path":`...)
		b = appendString(b, n.Path.String())
		b = append(b, `,"name":`...)
		b = appendString(b, n.Name)
		b = append(b, `,"bound":`...)
		b = appendBound(b, n.Bound, n.Addr)
		b = append(b, `,"tree":`...)
		if n.Child != nil {
			b = appendDelegate(b, n.Child)
		} else {
			b = append(b, `{"type":"neg","path":"~"}`...)
		}
		return append(b, '}')
	}
	b = append(b, `,"path":`...)
	b = appendString(b, delegatePathText(n))
	if n.Dentry != nil {
		b = append(b, `,"dentry":{"prefix":`...)
		b = appendString(b, n.Dentry.Prefix.String())
		b = append(b, `,"dst":`...)
		b = appendString(b, dtab.ShowTree(n.Dentry.Dst))
		b = append(b, '}')
	}
	switch n.Kind {
	case DelegateDelegated:
		b = append(b, `,"delegate":`...)
		b = appendDelegate(b, n.Child)
	case DelegateAlt:
		b = append(b, `,"alt":[`...)
		for i := range n.Alts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendDelegate(b, &n.Alts[i])
		}
		b = append(b, ']')
	case DelegateUnion:
		b = append(b, `,"union":[`...)
		for i := range n.Branches {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"weight":`...)
			b = append(b, dtab.FormatWeightJSON(n.Branches[i].Weight)...)
			b = append(b, `,"tree":`...)
			b = appendDelegate(b, &n.Branches[i].Tree)
			b = append(b, '}')
		}
		b = append(b, ']')
	case DelegateLeaf:
		b = append(b, `,"bound":`...)
		b = appendBound(b, n.Bound, n.Addr)
	case DelegateException:
		b = append(b, `,"message":`...)
		b = appendString(b, n.Message)
	}
	return append(b, '}')
}

// delegatePathText applies the delegator's path quirks (§10.4): a neg
// node with the empty path shows "~"; a fail node shows "!" unless its
// path is under /$/fail.
func delegatePathText(n *DelegateNode) string {
	switch n.Kind {
	case DelegateNeg:
		if len(n.Path) == 0 {
			return "~"
		}
	case DelegateFail:
		if len(n.Path) < 2 || n.Path[0] != "$" || n.Path[1] != "fail" {
			return "!"
		}
	}
	return n.Path.String()
}

func appendBound(b []byte, bd *Bound, a Addr) []byte {
	b = append(b, `{"addr":`...)
	b = appendAddr(b, a)
	b = append(b, `,"id":`...)
	if bd != nil {
		b = appendString(b, bd.ID.String())
		b = append(b, `,"path":`...)
		b = appendString(b, bd.Residual.String())
	} else {
		b = append(b, `"/","path":"/"`...)
	}
	return append(b, '}')
}

func appendBoundTree(b []byte, t BoundTree, addrs map[*Bound]Addr) []byte {
	switch t.Kind {
	case dtab.Neg:
		return append(b, `{"type":"neg"}`...)
	case dtab.Fail:
		return append(b, `{"type":"fail"}`...)
	case dtab.Empty:
		return append(b, `{"type":"empty"}`...)
	case dtab.Leaf:
		a, ok := addrs[t.Value]
		if !ok && t.Value != nil && t.Value.Addr != nil {
			a = t.Value.Addr.Get()
		}
		b = append(b, `{"type":"leaf","bound":`...)
		b = appendBound(b, t.Value, a)
		return append(b, '}')
	case dtab.Alt:
		b = append(b, `{"type":"alt","alt":[`...)
		for i, c := range t.Alts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendBoundTree(b, c, addrs)
		}
		return append(b, "]}"...)
	case dtab.Union:
		b = append(b, `{"type":"union","union":[`...)
		for i, w := range t.Branches {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"weight":`...)
			b = append(b, dtab.FormatWeightJSON(w.Weight)...)
			b = append(b, `,"tree":`...)
			b = appendBoundTree(b, w.Tree, addrs)
			b = append(b, '}')
		}
		return append(b, "]}"...)
	}
	return append(b, `{"type":"neg"}`...)
}

func appendAddr(b []byte, a Addr) []byte {
	switch a.State {
	case AddrPending:
		return append(b, `{"type":"pending"}`...)
	case AddrNeg:
		return append(b, `{"type":"neg"}`...)
	case AddrFailed:
		cause := "unknown failure"
		if a.Err != nil {
			cause = a.Err.Error()
		}
		b = append(b, `{"type":"failed","cause":`...)
		b = appendString(b, cause)
		return append(b, '}')
	}
	b = append(b, `{"type":"bound","addrs":[`...)
	for i, ad := range a.Addrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ip":`...)
		b = appendString(b, ad.Host)
		b = append(b, `,"port":`...)
		b = strconv.AppendInt(b, int64(ad.Port), 10)
		b = append(b, `,"meta":`...)
		meta := ad.Meta
		if ad.Weight != 1 && ad.Weight != 0 {
			if _, set := meta[MetaWeightKey]; !set {
				meta = make(map[string]any, len(ad.Meta)+1)
				for k, v := range ad.Meta {
					meta[k] = v
				}
				meta[MetaWeightKey] = ad.Weight
			}
		}
		b = appendMeta(b, meta)
		b = append(b, '}')
	}
	b = append(b, `],"meta":`...)
	b = appendMeta(b, a.Meta)
	return append(b, '}')
}

// appendMeta writes a metadata object with sorted keys. Float values are
// printed like Java doubles; other values as encoding/json does, without
// HTML escaping.
func appendMeta(b []byte, m map[string]any) []byte {
	b = append(b, '{')
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendString(b, x)
	case float64:
		return append(b, dtab.FormatWeightJSON(x)...)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return appendString(b, err.Error())
	}
	return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// appendString writes s as a JSON string, escaping only what JSON requires
// (like Jackson, unlike encoding/json's HTML-safe default). Invalid UTF-8
// becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
