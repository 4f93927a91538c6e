package naming

import "github.com/linnet-mesh/linnet/internal/dtab"

// StripTransformerPrefix drops the /%/<transformer>/... marker that a
// transformed bound id starts with (the elements before the first "#" or
// "$" one, Linkerd's Paths.stripTransformerPrefix): routers send such ids
// back to namerd, which resolves the id the namers bound.
func StripTransformerPrefix(p dtab.Path) dtab.Path {
	if len(p) == 0 || p[0] != "%" {
		return p
	}
	for i, e := range p {
		if e == "#" || e == "$" {
			return p[i:]
		}
	}
	return p
}
