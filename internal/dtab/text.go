package dtab

// Text encodings, so that paths, prefixes and dtabs appear in JSON, YAML
// and flag values as their canonical text rather than as arrays.

// MarshalText returns the canonical text of p (Path.String).
func (p Path) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses text with ParsePath.
func (p *Path) UnmarshalText(text []byte) error {
	v, err := ParsePath(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText returns the canonical text of x (Prefix.String).
func (x Prefix) MarshalText() ([]byte, error) { return []byte(x.String()), nil }

// UnmarshalText parses text with ParsePrefix.
func (x *Prefix) UnmarshalText(text []byte) error {
	v, err := ParsePrefix(string(text))
	if err != nil {
		return err
	}
	*x = v
	return nil
}

// MarshalText returns the canonical text of d (Dtab.String).
func (d Dtab) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses text with Parse.
func (d *Dtab) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
