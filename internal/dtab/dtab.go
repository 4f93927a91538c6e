package dtab

// Equal reports whether d and e have equal prefixes and destination trees.
func (d Dentry) Equal(e Dentry) bool {
	return d.Prefix.Equal(e.Prefix) && NameTreeEqual(d.Dst, e.Dst)
}

// Equal reports whether d and e have equal dentries in the same order.
func (d Dtab) Equal(e Dtab) bool {
	if len(d) != len(e) {
		return false
	}
	for i := range d {
		if !d[i].Equal(e[i]) {
			return false
		}
	}
	return true
}

// Concat returns d followed by other in a newly allocated dtab; since later
// dentries win, other's entries take priority (spec/dtab.md §9.1). The
// dentries themselves are shared, not copied.
func (d Dtab) Concat(other Dtab) Dtab {
	if len(d)+len(other) == 0 {
		return nil
	}
	r := make(Dtab, len(d)+len(other))
	copy(r, d)
	copy(r[len(d):], other)
	return r
}

// Lookup performs one lookup step of p against d (spec/dtab.md §5): the
// dentries are tried from last to first; for every one whose prefix
// matches, its destination is taken with the unmatched rest of p appended
// to every leaf path. No match gives Neg, one match that tree, several an
// Alt of them in the order found (last dentry first). Nothing is
// simplified.
//
// The result shares structure with d's trees (trees are values: do not
// modify them in place); leaf paths that got a rest appended are new.
func (d Dtab) Lookup(p Path) NameTree {
	var first NameTree
	var alts []NameTree
	n := 0
	for i := len(d) - 1; i >= 0; i-- {
		rest, ok := d[i].Prefix.Match(p)
		if !ok {
			continue
		}
		t := d[i].Dst
		if len(rest) > 0 {
			t = appendRest(t, rest)
		}
		switch n {
		case 0:
			first = t
		case 1:
			alts = make([]NameTree, 2, 4)
			alts[0], alts[1] = first, t
		default:
			alts = append(alts, t)
		}
		n++
	}
	switch n {
	case 0:
		return NameTree{Kind: Neg}
	case 1:
		return first
	}
	return NameTree{Kind: Alt, Alts: alts}
}

// appendRest returns t with rest appended to every leaf path. All the new
// leaf paths are cut from one allocation, as capacity-limited windows.
func appendRest(t NameTree, rest Path) NameTree {
	n := restSize(t, len(rest))
	buf := make([]string, 0, n)
	return appendRestInto(t, rest, &buf)
}

func restSize(t NameTree, r int) int {
	switch t.Kind {
	case Leaf:
		return len(t.Value) + r
	case Alt:
		n := 0
		for _, c := range t.Alts {
			n += restSize(c, r)
		}
		return n
	case Union:
		n := 0
		for _, b := range t.Branches {
			n += restSize(b.Tree, r)
		}
		return n
	}
	return 0
}

func appendRestInto(t NameTree, rest Path, buf *[]string) NameTree {
	switch t.Kind {
	case Leaf:
		start := len(*buf)
		*buf = append(*buf, t.Value...)
		*buf = append(*buf, rest...)
		end := len(*buf)
		return NameTree{Kind: Leaf, Value: (*buf)[start:end:end]}
	case Alt:
		alts := make([]NameTree, len(t.Alts))
		for i, c := range t.Alts {
			alts[i] = appendRestInto(c, rest, buf)
		}
		return NameTree{Kind: Alt, Alts: alts}
	case Union:
		bs := make([]Weighted[Path], len(t.Branches))
		for i, b := range t.Branches {
			bs[i] = Weighted[Path]{Weight: b.Weight, Tree: appendRestInto(b.Tree, rest, buf)}
		}
		return NameTree{Kind: Union, Branches: bs}
	}
	return NameTree{Kind: t.Kind}
}
