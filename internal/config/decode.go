package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Defaulter is implemented by config types that set their defaults before
// being filled from the text. It is called on every freshly created value,
// after the defaults of its own struct fields.
type Defaulter interface {
	SetDefaults()
}

// Validator is implemented by config types that check themselves after
// being filled. An error from Validate is reported at the value's path;
// return FieldError to point at one of its keys instead. Validate runs
// only when the value and everything in it decoded without error. The
// decoder calls the Validate of the value as a whole: a struct embedded
// inline is not validated on its own, so an outer type that declares its
// own Validate must call the embedded one (Go's method promotion does it
// when the outer type declares none).
type Validator interface {
	Validate() error
}

// KeyHinter is implemented by config types that can say more about a key
// they do not accept, e.g. a key that belongs to another protocol. A
// non-empty hint replaces the generic "unknown key" message.
type KeyHinter interface {
	UnknownKeyHint(key string) string
}

func addrOf(v reflect.Value) any {
	if v.CanAddr() {
		return v.Addr().Interface()
	}
	return nil
}

// Load decodes text (YAML, or JSON if the first non-space character is '{')
// into dst, a non-nil pointer to a struct with `yaml:"key"` tags. It applies
// SetDefaults first, rejects unknown and duplicate keys and values of the
// wrong type, refuses keys tagged `config:"unsupported"`, enforces
// `config:"required"`, and calls Validate hooks bottom-up. The error is a
// *Error, or an Errors when there are several problems.
func Load(text []byte, dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return fmt.Errorf("config.Load: destination must be a non-nil pointer, not %T", dst)
	}
	root, err := parse(text)
	if err != nil {
		return err
	}
	d := &decoder{}
	setDefaults(v.Elem())
	d.decode(root, v.Elem(), "")
	return d.err()
}

// maxErrors bounds how many problems one Load reports.
const maxErrors = 50

type decoder struct {
	errs  []*Error // the first maxErrors problems
	count int      // all problems: "no new errors" checks use it
}

func (d *decoder) add(path string, line int, format string, args ...any) {
	d.push(&Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) push(e *Error) {
	d.count++
	if len(d.errs) < maxErrors {
		d.errs = append(d.errs, e)
	}
}

func (d *decoder) err() error {
	switch len(d.errs) {
	case 0:
		return nil
	case 1:
		return d.errs[0]
	}
	return Errors(d.errs)
}

var (
	defaulterType   = reflect.TypeFor[Defaulter]()
	validatorType   = reflect.TypeFor[Validator]()
	kindedType      = reflect.TypeFor[kindedField]()
	oneOrManyType   = reflect.TypeFor[oneOrMany]()
	rawType         = reflect.TypeFor[Raw]()
	unmarshalerType = reflect.TypeFor[Unmarshaler]()
)

// setDefaults prepares a fresh value: the defaults of its struct fields
// first (so a parent's SetDefaults can override them), then its own.
func setDefaults(v reflect.Value) {
	if v.Kind() == reflect.Struct {
		for i := range v.NumField() {
			f := v.Field(i)
			if f.CanSet() && f.Kind() == reflect.Struct {
				setDefaults(f)
			}
		}
	}
	if v.CanAddr() && v.Addr().Type().Implements(defaulterType) {
		v.Addr().Interface().(Defaulter).SetDefaults()
	}
}

// fresh returns a new, defaulted value of type t (addressable).
func fresh(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	setDefaults(v)
	return v
}

// decode fills v (settable) from n. A nil or null n leaves v as it is
// (its defaults) for structs, and zeroes other values.
func (d *decoder) decode(n *node, v reflect.Value, path string) {
	before := d.count
	d.decodeValue(n, v, path, nil)
	if d.count == before && (n != nil || v.Kind() == reflect.Struct) {
		d.validate(n, v, path)
	}
}

func (d *decoder) validate(n *node, v reflect.Value, path string) {
	if !v.CanAddr() || !v.Addr().Type().Implements(validatorType) {
		return
	}
	err := v.Addr().Interface().(Validator).Validate()
	if err == nil {
		return
	}
	line := 0
	if n != nil {
		line = n.line
	}
	var ce *Error
	var ces Errors
	if !errors.As(err, &ce) && !errors.As(err, &ces) {
		d.add(path, line, "%s", err.Error())
		return
	}
	for _, e := range AsErrors(err) {
		l := e.Line
		if l == 0 {
			l = lineOf(n, e.Path, line)
		}
		d.push(&Error{Path: joinPath(path, e.Path), Line: l, Msg: e.Msg})
	}
}

// lineOf finds the line of the relative path rel ("a.b[2].c") below n,
// falling back to the deepest node found.
func lineOf(n *node, rel string, fallback int) int {
	line := fallback
	for rel != "" && n != nil {
		var seg string
		if rel[0] == '[' {
			end := strings.IndexByte(rel, ']')
			if end < 0 {
				break
			}
			i, err := strconv.Atoi(rel[1:end])
			rel = strings.TrimPrefix(rel[end+1:], ".")
			if err != nil || n.kind != seqNode || i < 0 || i >= len(n.items) {
				return line
			}
			n = n.items[i]
			if n != nil && n.line > 0 {
				line = n.line
			}
			continue
		}
		end := strings.IndexAny(rel, ".[")
		if end < 0 {
			seg, rel = rel, ""
		} else {
			seg, rel = rel[:end], strings.TrimPrefix(rel[end:], ".")
		}
		child, kl, ok := n.get(seg)
		if !ok {
			return line
		}
		line = kl
		n = child
	}
	return line
}

func (d *decoder) typeError(n *node, path, want string) {
	got := n.describe()
	if n.kind == scalarNode {
		d.add(path, n.line, "expected %s, got %s (%q)", want, got, truncate(n.value))
		return
	}
	d.add(path, n.line, "expected %s, got %s", want, got)
}

func truncate(s string) string {
	if len(s) > 40 {
		i := 40
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		return s[:i] + "..."
	}
	return s
}

func (d *decoder) decodeValue(n *node, v reflect.Value, path string, skip []string) {
	if v.Type() == rawType {
		v.Set(reflect.ValueOf(Raw{n: n, path: path}))
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(Unmarshaler).UnmarshalConfig(Raw{n: n, path: path}); err != nil {
			d.addAbsolute(err, path, lineOr(n))
		}
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(kindedType) {
		d.decodeKinded(n, v.Addr().Interface().(kindedField), path)
		return
	}
	t := v.Type()
	if n == nil || n.kind == nullNode {
		if t.Kind() != reflect.Struct {
			v.SetZero()
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := fresh(t.Elem())
		before := d.count
		d.decodeValue(n, nv, path, skip)
		if d.count == before {
			d.validate(n, nv, path)
		}
		v.Set(nv.Addr())
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.add(path, n.line, "cannot decode into %v", t)
			return
		}
		v.Set(reflect.ValueOf(generic(n)))
	case reflect.Struct:
		d.decodeStruct(n, v, path, skip)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.kind != scalarNode {
			d.typeError(n, path, "a string")
			return
		}
		v.SetString(n.value)
	case reflect.Bool:
		b, ok := boolOf(n)
		if !ok {
			d.typeError(n, path, "a boolean (true or false)")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, e := intOf(n)
		switch {
		case e == numSyntax:
			d.typeError(n, path, "an integer")
		case e == numRange || v.OverflowInt(i):
			d.add(path, n.line, "integer %s out of range", truncate(n.value))
		default:
			v.SetInt(i)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, e := uintOf(n)
		switch {
		case e == numSyntax:
			d.typeError(n, path, "a non-negative integer")
		case e == numRange || v.OverflowUint(u):
			d.add(path, n.line, "%s is not a non-negative integer in range", truncate(n.value))
		default:
			v.SetUint(u)
		}
	case reflect.Float32, reflect.Float64:
		f, e := floatOf(n)
		switch {
		case e == numSyntax:
			d.typeError(n, path, "a number")
		case e == numRange || v.OverflowFloat(f):
			d.add(path, n.line, "%s is not a finite number", truncate(n.value))
		default:
			v.SetFloat(f)
		}
	default:
		d.add(path, n.line, "cannot decode into %v", t)
	}
}

func parseFloat(s string) (float64, error) {
	s = strings.ReplaceAll(s, "_", "")
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, nil
	}
	i, err := strconv.ParseInt(s, 0, 64) // 0x.., 0o..
	return float64(i), err
}

func (d *decoder) decodeSlice(n *node, v reflect.Value, path string) {
	t := v.Type()
	if n.kind != seqNode {
		if t.Implements(oneOrManyType) {
			e := fresh(t.Elem())
			d.decode(n, e, path)
			v.Set(reflect.Append(reflect.MakeSlice(t, 0, 1), e))
			return
		}
		d.typeError(n, path, "a list")
		return
	}
	s := reflect.MakeSlice(t, 0, len(n.items))
	for i, it := range n.items {
		e := fresh(t.Elem())
		d.decode(it, e, fmt.Sprintf("%s[%d]", path, i))
		s = reflect.Append(s, e)
	}
	v.Set(s)
}

func (d *decoder) decodeMap(n *node, v reflect.Value, path string) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.add(path, n.line, "cannot decode into %v", t)
		return
	}
	if n.kind != mapNode {
		d.typeError(n, path, "a mapping")
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.keys))
	for i, k := range n.keys {
		e := fresh(t.Elem())
		d.decode(n.vals[i], e, joinPath(path, k))
		m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
	}
	v.Set(m)
}

func (d *decoder) decodeStruct(n *node, v reflect.Value, path string, skip []string) {
	if n.kind != mapNode {
		d.typeError(n, path, "a mapping")
		return
	}
	fields := fieldsOf(v.Type())
	for i, key := range n.keys {
		if slices.Contains(skip, key) {
			continue
		}
		kpath := joinPath(path, key)
		f, ok := fields.byName[key]
		if !ok {
			if h, isHinter := addrOf(v).(KeyHinter); isHinter {
				if msg := h.UnknownKeyHint(key); msg != "" {
					d.add(kpath, n.klines[i], "%s", msg)
					continue
				}
			}
			d.unknownKey(key, fields, kpath, n.klines[i])
			continue
		}
		if f.unsupported {
			d.add(kpath, n.klines[i], "%s", Unsupported("`"+key+"`"))
			continue
		}
		d.decode(n.vals[i], v.FieldByIndex(f.index), kpath)
	}
	for _, f := range fields.list {
		if f.required {
			if _, _, ok := n.get(f.name); !ok {
				d.add(path, n.line, "missing required key `%s`", f.name)
			}
		}
	}
}

func (d *decoder) unknownKey(key string, fields *structFields, kpath string, line int) {
	names := make([]string, 0, len(fields.list))
	for _, f := range fields.list {
		if !f.unsupported {
			names = append(names, f.name)
		}
	}
	sort.Strings(names)
	if s := suggest(key, names); s != "" {
		d.add(kpath, line, "unknown key %q; did you mean %q?", key, s)
		return
	}
	if len(names) == 0 {
		d.add(kpath, line, "unknown key %q (no keys are accepted here)", key)
		return
	}
	d.add(kpath, line, "unknown key %q (known: %s)", key, strings.Join(names, ", "))
}

func (d *decoder) decodeKinded(n *node, k kindedField, path string) {
	key := kindKeyOf(k.iface())
	known := strings.Join(kindsOf(k.iface()), ", ")
	if n == nil || n.kind == nullNode {
		if k.currentKind() == "" {
			d.add(path, lineOr(n), "missing `%s` (known: %s)", key, known)
		}
		return
	}
	if n.kind != mapNode {
		d.typeError(n, path, "a mapping with a `"+key+"` key")
		return
	}
	kind := k.currentKind()
	kline := n.line
	if kn, kl, ok := n.get(key); ok {
		if kn == nil || kn.kind != scalarNode {
			d.typeError(kn, joinPath(path, key), "a string")
			return
		}
		kind, kline = kn.value, kl
	} else if kind == "" {
		d.add(path, n.line, "missing `%s` (known: %s)", key, known)
		return
	}
	ctor, msg := lookupKind(k.iface(), kind)
	if ctor == nil {
		d.add(joinPath(path, key), kline, "%s", msg)
		return
	}
	cv := ctor()
	if cv == nil {
		d.add(joinPath(path, key), kline, "%s %q has a nil config constructor", key, kind)
		return
	}
	rv := reflect.ValueOf(cv)
	before := d.count
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		e := rv.Elem()
		setDefaults(e)
		d.decodeValue(n, e, path, []string{key})
		if d.count == before {
			d.validate(n, e, path)
		}
	} else {
		e := reflect.New(rv.Type()).Elem()
		e.Set(rv)
		d.decodeValue(n, e, path, []string{key})
		if d.count == before {
			d.validate(n, e, path)
		}
		cv = e.Interface()
	}
	if d.count == before {
		k.set(kind, cv)
	}
}

func lineOr(n *node) int {
	if n == nil {
		return 0
	}
	return n.line
}

// generic converts n to plain Go values (map[string]any, []any, string,
// int64, float64, bool, nil).
func generic(n *node) any {
	if n == nil {
		return nil
	}
	switch n.kind {
	case mapNode:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k] = generic(n.vals[i])
		}
		return m
	case seqNode:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			s[i] = generic(it)
		}
		return s
	case scalarNode:
		switch n.stype {
		case intScalar:
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.value, "_", ""), 0, 64); err == nil {
				return i
			}
			if f, err := parseFloat(n.value); err == nil {
				return f
			}
		case floatScalar:
			if f, err := parseFloat(n.value); err == nil {
				return f
			}
		case boolScalar:
			return strings.EqualFold(n.value, "true")
		}
		return n.value
	}
	return nil
}

// ---- struct field tables ----

type fieldInfo struct {
	name        string
	index       []int
	required    bool
	unsupported bool
}

type structFields struct {
	list   []*fieldInfo
	byName map[string]*fieldInfo
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if c, ok := fieldCache.Load(t); ok {
		return c.(*structFields)
	}
	sf := &structFields{byName: map[string]*fieldInfo{}}
	collectFields(t, nil, sf, 0)
	fieldCache.Store(t, sf)
	return sf
}

func collectFields(t reflect.Type, index []int, sf *structFields, depth int) {
	if depth > 10 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		inline := strings.Contains(opts, "inline") || (f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct)
		if inline && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, idx, sf, depth+1)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			r, size := utf8.DecodeRuneInString(f.Name)
			name = string(unicode.ToLower(r)) + f.Name[size:]
		}
		fi := &fieldInfo{name: name, index: idx}
		for _, o := range strings.Split(f.Tag.Get("config"), ",") {
			switch strings.TrimSpace(o) {
			case "required":
				fi.required = true
			case "unsupported":
				fi.unsupported = true
			}
		}
		if prev, dup := sf.byName[name]; dup {
			// The shallower field wins, as with Go's embedding rules.
			if len(prev.index) <= len(idx) {
				continue
			}
			for j, p := range sf.list {
				if p == prev {
					sf.list = append(sf.list[:j], sf.list[j+1:]...)
					break
				}
			}
		}
		sf.byName[name] = fi
		sf.list = append(sf.list, fi)
	}
}
