package config

import (
	"errors"
	"fmt"
	"reflect"
)

// Raw is a part of the document kept undecoded, with its place. A field of
// type Raw captures its block as is; Unmarshaler implementations receive
// one. Errors made from a Raw carry the absolute path and line.
type Raw struct {
	n    *node
	path string
}

// Unmarshaler is implemented by config types that decode themselves, e.g.
// a block whose key set depends on one of its keys. Errors returned must
// come from Raw (Decode, Errorf) or be plain errors, which are reported at
// the block's place.
type Unmarshaler interface {
	UnmarshalConfig(r Raw) error
}

// IsZero reports whether the value is absent or null.
func (r Raw) IsZero() bool { return r.n == nil || r.n.kind == nullNode }

// Path returns the place of the value, e.g. "routers[0].client".
func (r Raw) Path() string { return r.path }

// Line returns the line of the value (0 if absent).
func (r Raw) Line() int { return lineOr(r.n) }

// IsMap reports whether the value is a mapping.
func (r Raw) IsMap() bool { return r.n != nil && r.n.kind == mapNode }

// Keys returns the keys of a mapping, in document order.
func (r Raw) Keys() []string {
	if !r.IsMap() {
		return nil
	}
	return append([]string(nil), r.n.keys...)
}

// Get returns the value of key in a mapping.
func (r Raw) Get(key string) (Raw, bool) {
	v, line, ok := r.n.get(key)
	if !ok {
		return Raw{}, false
	}
	if v == nil {
		v = &node{kind: nullNode, line: line}
	}
	if v.line == 0 {
		v.line = line
	}
	return Raw{n: v, path: joinPath(r.path, key)}, true
}

// KeyLine returns the line of key in a mapping (0 if absent).
func (r Raw) KeyLine(key string) int {
	_, line, _ := r.n.get(key)
	return line
}

// Items returns the elements of a list (nil if it is not a list).
func (r Raw) Items() []Raw {
	if r.n == nil || r.n.kind != seqNode {
		return nil
	}
	out := make([]Raw, len(r.n.items))
	for i, it := range r.n.items {
		out[i] = Raw{n: it, path: fmt.Sprintf("%s[%d]", r.path, i)}
	}
	return out
}

// Scalar returns the text of a scalar value.
func (r Raw) Scalar() (string, bool) {
	if r.n == nil || r.n.kind != scalarNode {
		return "", false
	}
	return r.n.value, true
}

// Errorf returns an error at this value's place.
func (r Raw) Errorf(format string, args ...any) *Error {
	return &Error{Path: r.path, Line: r.Line(), Msg: fmt.Sprintf(format, args...)}
}

// Decode decodes the value onto dst (a non-nil pointer) without resetting
// it: keys absent from the value keep what dst holds, so several Raws can
// be layered. Keys in skip are ignored. Validate hooks run as in Load.
func (r Raw) Decode(dst any, skip ...string) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config.Raw.Decode: destination must be a non-nil pointer, not %T", dst)
	}
	d := &decoder{}
	before := d.count
	d.decodeValue(r.n, v.Elem(), r.path, skip)
	if d.count == before && (r.n != nil || v.Elem().Kind() == reflect.Struct) {
		d.validate(r.n, v.Elem(), r.path)
	}
	return d.err()
}

// addAbsolute records errors that already carry absolute places.
func (d *decoder) addAbsolute(err error, path string, line int) {
	var ce *Error
	var ces Errors
	if !errors.As(err, &ce) && !errors.As(err, &ces) {
		d.add(path, line, "%s", err.Error())
		return
	}
	for _, e := range AsErrors(err) {
		d.push(e)
	}
}

func reflectValueOf(ptr any) reflect.Value {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}
