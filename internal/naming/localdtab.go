package naming

import "github.com/linnet-mesh/linnet/internal/dtab"

// Request dtab header names (spec/dtab.md §9.2).
const (
	HeaderCtxDtab  = "l5d-ctx-dtab"
	HeaderUserDtab = "l5d-dtab"
)

// LocalDtab builds a request's local dtab from the values of its
// l5d-ctx-dtab headers and then its l5d-dtab headers, each value parsed as
// a complete dtab, in arrival order, so user entries override context
// entries (spec/dtab.md §9.2). On a malformed value it returns the
// *dtab.ParseError and, as source, the name of the header it came from;
// the request must then be refused with 400 and err's message.
func LocalDtab(ctxValues, userValues []string) (d dtab.Dtab, source string, err error) {
	for _, group := range [2]struct {
		name   string
		values []string
	}{{HeaderCtxDtab, ctxValues}, {HeaderUserDtab, userValues}} {
		for _, v := range group.values {
			p, err := dtab.Parse(v)
			if err != nil {
				return nil, group.name, err
			}
			d = append(d, p...)
		}
	}
	return d, "", nil
}
