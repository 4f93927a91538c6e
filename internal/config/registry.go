package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// registry maps an extension-point interface type to its kinds.
var registry = struct {
	sync.RWMutex
	kinds       map[reflect.Type]map[string]func() any
	unsupported map[reflect.Type]map[string]bool
	keys        map[reflect.Type]string
}{
	kinds:       map[reflect.Type]map[string]func() any{},
	unsupported: map[reflect.Type]map[string]bool{},
	keys:        map[reflect.Type]string{},
}

// SetKindKey names the key that selects the kind at extension point I, for
// points that do not use `kind` (a router's `protocol`). Call it from init.
func SetKindKey[I any](key string) {
	registry.Lock()
	defer registry.Unlock()
	registry.keys[reflect.TypeFor[I]()] = key
}

func kindKeyOf(t reflect.Type) string {
	registry.RLock()
	defer registry.RUnlock()
	if k := registry.keys[t]; k != "" {
		return k
	}
	return "kind"
}

// Register makes kind available at the extension point I (an interface
// type, e.g. naming.NamerConfig). newConfig returns a fresh config value,
// normally a pointer to a struct with yaml tags that implements I; the
// decoder calls its SetDefaults, fills it from the block's keys (all but
// `kind`) and calls its Validate. Register panics if kind is already
// registered for I or I is not an interface; call it from init.
func Register[I any](kind string, newConfig func() I) {
	t := reflect.TypeFor[I]()
	if t.Kind() != reflect.Interface {
		panic(fmt.Sprintf("config.Register: %v is not an interface type", t))
	}
	if kind == "" || newConfig == nil {
		panic("config.Register: empty kind or nil constructor")
	}
	registry.Lock()
	defer registry.Unlock()
	m := registry.kinds[t]
	if m == nil {
		m = map[string]func() any{}
		registry.kinds[t] = m
	}
	if _, dup := m[kind]; dup {
		panic(fmt.Sprintf("config.Register: kind %q registered twice for %v", kind, t))
	}
	m[kind] = func() any { return newConfig() }
}

// RegisterUnsupported declares kinds that exist in Linkerd 1.x at the
// extension point I but are not implemented by this version. Choosing one
// is refused with "... not supported by this version" instead of "unknown
// kind". A later Register of the same kind takes precedence, so the list
// may be declared once, centrally, while implementations land one by one.
func RegisterUnsupported[I any](kinds ...string) {
	t := reflect.TypeFor[I]()
	registry.Lock()
	defer registry.Unlock()
	m := registry.unsupported[t]
	if m == nil {
		m = map[string]bool{}
		registry.unsupported[t] = m
	}
	for _, k := range kinds {
		m[k] = true
	}
}

var buildNote atomic.Pointer[string]

// SetBuildNote adds note to every "not supported by this version" answer
// about a kind, for builds that leave plug-ins out on purpose (such as
// "this build leaves out the Kubernetes and etcd plug-ins"). Call it from
// init.
func SetBuildNote(note string) { buildNote.Store(&note) }

// Kinds returns the kinds registered for I, sorted.
func Kinds[I any]() []string { return kindsOf(reflect.TypeFor[I]()) }

func kindsOf(t reflect.Type) []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.kinds[t]))
	for k := range registry.kinds[t] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lookupKind returns the constructor of kind at t, or an error message.
func lookupKind(t reflect.Type, kind string) (func() any, string) {
	registry.RLock()
	f := registry.kinds[t][kind]
	unsup := registry.unsupported[t][kind]
	registry.RUnlock()
	if f != nil {
		return f, ""
	}
	key := kindKeyOf(t)
	if unsup {
		msg := Unsupported(fmt.Sprintf("%s %q", key, kind))
		if note := buildNote.Load(); note != nil {
			msg += " (" + *note + ")"
		}
		return nil, msg
	}
	known := kindsOf(t)
	if len(known) == 0 {
		return nil, fmt.Sprintf("unknown %s %q (none is available here)", key, kind)
	}
	msg := fmt.Sprintf("unknown %s %q (known: %s)", key, kind, strings.Join(known, ", "))
	if s := suggest(kind, known); s != "" {
		msg = fmt.Sprintf("unknown %s %q; did you mean %q? (known: %s)", key, kind, s, strings.Join(known, ", "))
	}
	return nil, msg
}

// Kinded is a field that holds one of the kinds registered for the
// extension point I, selected by the block's `kind` key (or the key set
// with SetKindKey):
//
//	namers:
//	- kind: io.l5d.fs
//	  rootDir: disco
//
// Kind is the selected kind, Value its decoded config. A Kinded whose Kind
// is preset (by a SetDefaults) accepts a block without `kind`.
type Kinded[I any] struct {
	Kind  string
	Value I
}

// New returns a Kinded holding a fresh, defaulted config of kind (as if the
// block `{kind: <kind>}` had been loaded), e.g. for code-built defaults.
func New[I any](kind string) (Kinded[I], error) {
	var k Kinded[I]
	n := &node{kind: mapNode, keys: []string{kindKeyOf(reflect.TypeFor[I]())}, klines: []int{0},
		vals: []*node{{kind: scalarNode, value: kind}}}
	d := &decoder{}
	d.decode(n, reflect.ValueOf(&k).Elem(), "")
	if err := d.err(); err != nil {
		return k, err
	}
	return k, nil
}

// kindedField is implemented by every *Kinded[I]; the decoder uses it.
type kindedField interface {
	iface() reflect.Type
	currentKind() string
	set(kind string, v any)
}

func (k *Kinded[I]) iface() reflect.Type    { return reflect.TypeFor[I]() }
func (k *Kinded[I]) currentKind() string    { return k.Kind }
func (k *Kinded[I]) set(kind string, v any) { k.Kind, k.Value = kind, v.(I) }

// List is a field that accepts either one value or a list of them (e.g. a
// router's `identifier:`). Single values decode into a list of one.
type List[T any] []T

func (List[T]) oneOrMany() {}

type oneOrMany interface{ oneOrMany() }

// suggest returns the candidate closest to s if it is a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 3 // accept distance 2
	if len(s) <= 3 {
		bestD = 2 // accept distance 1
	}
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
