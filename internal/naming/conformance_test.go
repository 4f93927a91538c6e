package naming

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// vectorFile is the conformance vector set (spec/dtab.md §1); the env
// variable LINNET_VECTORS names another file (make vectors VECTORS=FILE).
func vectorFile() string {
	if f := os.Getenv("LINNET_VECTORS"); f != "" {
		return f
	}
	return "testdata/dtab-vectors.json"
}

type vector struct {
	Name       string                     `json:"name"`
	Kind       string                     `json:"kind"`
	Dtab       *string                    `json:"dtab"`
	Tree       *string                    `json:"tree"`
	Path       *string                    `json:"path"`
	Namers     map[string]json.RawMessage `json:"namers"`
	Headers    map[string][]string        `json:"headers"`
	Expect     map[string]json.RawMessage `json:"expect"`
	Delegation json.RawMessage            `json:"delegation"`
}

// TestConformance runs every vector of the conformance file as a subtest
// and ends by printing "N passed, M failed".
func TestConformance(t *testing.T) {
	file := vectorFile()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var doc struct {
		Version int      `json:"version"`
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decoding %s: %v", file, err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatalf("%s holds no vectors", file)
	}
	passed, failed := 0, 0
	for i, v := range doc.Vectors {
		name := v.Name
		if name == "" {
			name = "vector-" + strconv.Itoa(i)
		}
		ok := t.Run(name, func(t *testing.T) {
			switch v.Kind {
			case "show":
				runShow(t, v)
			case "tree":
				runTree(t, v)
			case "bind":
				runBind(t, v)
			default:
				t.Fatalf("unknown vector kind %q", v.Kind)
			}
		})
		if ok {
			passed++
		} else {
			failed++
		}
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
}

func str(t *testing.T, field string, s *string) string {
	t.Helper()
	if s == nil {
		t.Fatalf("vector has no %q", field)
	}
	return *s
}

func expectString(t *testing.T, v vector, key string) (string, bool) {
	t.Helper()
	raw, ok := v.Expect[key]
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("expect.%s: %v", key, err)
	}
	return s, true
}

// checkParseError checks that err is the expected parse error, if the vector
// expects one; it reports whether it did.
func checkParseError(t *testing.T, v vector, source string, err error) bool {
	t.Helper()
	if _, want := v.Expect["parse_error"]; !want {
		if err != nil {
			t.Fatalf("%s: unexpected parse error: %v", source, err)
		}
		return false
	}
	if err == nil {
		return false
	}
	if src, ok := expectString(t, v, "source"); ok && src != source {
		t.Fatalf("parse error in %s (%v), want it in %s", source, err, src)
	}
	var pe *dtab.ParseError
	if !errors.As(err, &pe) {
		t.Errorf("error %v (%T) is not a *dtab.ParseError", err, err)
	}
	if msg, ok := expectString(t, v, "message"); ok && err.Error() != msg {
		t.Errorf("parse error message\n got: %s\nwant: %s", err.Error(), msg)
	}
	return true
}

func runShow(t *testing.T, v vector) {
	d, err := dtab.Parse(str(t, "dtab", v.Dtab))
	if checkParseError(t, v, "dtab", err) {
		return
	}
	if _, wantErr := v.Expect["parse_error"]; wantErr {
		t.Fatalf("parsed as %q, want a parse error", d.String())
	}
	want, _ := expectString(t, v, "show")
	if got := d.String(); got != want {
		t.Fatalf("show\n got: %s\nwant: %s", got, want)
	}
	again, err := dtab.Parse(want)
	if err != nil {
		t.Fatalf("re-parsing the shown form: %v", err)
	}
	if got := again.String(); got != want {
		t.Fatalf("show(parse(show)) = %s, want %s", got, want)
	}
}

func runTree(t *testing.T, v vector) {
	tree, err := dtab.ParseTree(str(t, "tree", v.Tree))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	want, _ := expectString(t, v, "simplified")
	simple := dtab.Simplify(tree)
	if got := dtab.ShowTree(simple); got != want {
		t.Errorf("simplified\n got: %s\nwant: %s", got, want)
	}
	var wantEval *[]string
	if err := json.Unmarshal(v.Expect["eval"], &wantEval); err != nil {
		t.Fatalf("expect.eval: %v", err)
	}
	for _, x := range []struct {
		what string
		t    dtab.NameTree
	}{{"eval", tree}, {"eval(simplified)", simple}} {
		leaves, ok := dtab.Eval(x.t)
		var got *[]string
		if ok {
			s := make([]string, 0, len(leaves))
			for _, l := range leaves {
				s = append(s, l.String())
			}
			slices.Sort(s)
			s = slices.Compact(s)
			got = &s
		}
		if !reflect.DeepEqual(got, wantEval) {
			t.Errorf("%s = %s, want %s", x.what, jsonText(got), jsonText(wantEval))
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// vectorNamers builds the vector's namers (spec/dtab.md §1.3).
func vectorNamers(t *testing.T, v vector) []MountedNamer {
	t.Helper()
	var out []MountedNamer
	prefixes := make([]string, 0, len(v.Namers))
	for p := range v.Namers {
		prefixes = append(prefixes, p)
	}
	slices.Sort(prefixes)
	for _, p := range prefixes {
		prefix, err := dtab.ParsePath(p)
		if err != nil {
			t.Fatalf("namer prefix %q: %v", p, err)
		}
		raw := v.Namers[p]
		var mode string
		if json.Unmarshal(raw, &mode) == nil {
			if mode != "error" {
				t.Fatalf("namer %s: unknown mode %q", p, mode)
			}
			out = append(out, MountedNamer{Prefix: prefix, Namer: NewFailingNamer(prefix)})
			continue
		}
		var names map[string][]string
		if err := json.Unmarshal(raw, &names); err != nil {
			t.Fatalf("namer %s: %v", p, err)
		}
		set := map[string][]Address{}
		for name, hps := range names {
			for _, hp := range hps {
				host, port, err := net.SplitHostPort(hp)
				if err != nil {
					t.Fatalf("namer %s name %s: %v", p, name, err)
				}
				n, err := strconv.Atoi(port)
				if err != nil {
					t.Fatalf("namer %s name %s: port %q: %v", p, name, port, err)
				}
				set[name] = append(set[name], Address{Host: host, Port: n, Weight: 1})
			}
		}
		out = append(out, MountedNamer{Prefix: prefix, Namer: NewStaticNamer(prefix, set)})
	}
	return out
}

func headerValues(h map[string][]string, name string) []string {
	var out []string
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			out = append(out, vs...)
		}
	}
	return out
}

func runBind(t *testing.T, v vector) {
	base, err := dtab.Parse(str(t, "dtab", v.Dtab))
	if checkParseError(t, v, "dtab", err) {
		return
	}
	path, err := dtab.ParsePath(str(t, "path", v.Path))
	if checkParseError(t, v, "path", err) {
		return
	}
	local, source, err := LocalDtab(headerValues(v.Headers, HeaderCtxDtab), headerValues(v.Headers, HeaderUserDtab))
	if checkParseError(t, v, source, err) {
		return
	}
	if _, wantErr := v.Expect["parse_error"]; wantErr {
		t.Fatal("everything parsed, want a parse error")
	}
	in := NewInterpreter(vectorNamers(t, v))
	d := base.Concat(local)

	// The one-shot result and the live (subscribed) result must agree.
	got := in.Bind(d, path).Get()
	var live watch.Activity[BoundTree]
	cancel := in.Bind(d, path).Subscribe(func(a watch.Activity[BoundTree]) { live = a })
	cancel()
	if got.State != live.State || jsonText(vectorTree(got.Value)) != jsonText(vectorTree(live.Value)) {
		t.Errorf("Get and Subscribe disagree: %v %s vs %v %s", got.State, jsonText(vectorTree(got.Value)),
			live.State, jsonText(vectorTree(live.Value)))
	}

	if wantErr, ok := expectString(t, v, "error"); ok {
		if got.State != watch.Failed {
			t.Fatalf("bound to %s (%v), want error %q", jsonText(vectorTree(got.Value)), got.State, wantErr)
		}
		isDepth := errors.Is(got.Err, ErrMaxDepth)
		switch wantErr {
		case "max_depth":
			if !isDepth {
				t.Errorf("error %v, want a max-depth error", got.Err)
			} else if got.Err.Error() != "Max recursion level: 100 reached in Namer lookup" {
				t.Errorf("max-depth message %q", got.Err.Error())
			}
		case "namer":
			if isDepth {
				t.Errorf("error %v, want a namer error", got.Err)
			}
		default:
			t.Fatalf("unknown expected error %q", wantErr)
		}
	} else {
		if got.State != watch.Ok {
			t.Fatalf("binding is %v (%v), want a tree", got.State, got.Err)
		}
		assertSameJSON(t, "tree", vectorTree(got.Value), v.Expect["tree"])
		if rawShares, ok := v.Expect["shares"]; ok {
			checkShares(t, Shares(got.Value), rawShares)
		}
	}

	if len(v.Delegation) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := Delegate(ctx, in, d, path)
		if err != nil {
			t.Fatalf("delegate: %v", err)
		}
		assertSameJSON(t, "delegation", json.RawMessage(MarshalDelegateJSON(n)), v.Delegation)
	}
}

// vectorTree encodes a bound tree as the vectors do (spec/dtab.md §1.3).
func vectorTree(t BoundTree) any {
	switch t.Kind {
	case dtab.Leaf:
		return map[string]any{"type": "leaf", "id": t.Value.ID.String(), "residual": t.Value.Residual.String()}
	case dtab.Union:
		bs := []any{}
		for _, b := range t.Branches {
			bs = append(bs, map[string]any{"weight": b.Weight, "tree": vectorTree(b.Tree)})
		}
		return map[string]any{"type": "union", "branches": bs}
	case dtab.Alt:
		as := []any{}
		for _, a := range t.Alts {
			as = append(as, vectorTree(a))
		}
		return map[string]any{"type": "alt", "alts": as}
	}
	return map[string]any{"type": strings.ToLower(t.Kind.String())}
}

// assertSameJSON compares got (any value, or raw JSON) with want as JSON
// values, ignoring key order.
func assertSameJSON(t *testing.T, what string, got any, want json.RawMessage) {
	t.Helper()
	gotRaw, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var g, w any
	if err := json.Unmarshal(gotRaw, &g); err != nil {
		t.Fatalf("%s: our JSON does not parse: %v\n%s", what, err, gotRaw)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: expected JSON: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s\n got: %s\nwant: %s", what, gotRaw, compactJSON(want))
	}
}

func compactJSON(raw json.RawMessage) string {
	var v any
	_ = json.Unmarshal(raw, &v)
	return jsonText(v)
}

func checkShares(t *testing.T, got []Share, raw json.RawMessage) {
	t.Helper()
	var want []struct {
		ID       string  `json:"id"`
		Residual string  `json:"residual"`
		Empty    bool    `json:"empty"`
		Share    float64 `json:"share"`
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("expect.shares: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d shares, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if w.Empty {
			if g.Kind != dtab.Empty {
				t.Errorf("share %d is %v, want empty", i, g.Kind)
			}
		} else if g.Kind != dtab.Leaf || g.Bound.ID.String() != w.ID || g.Bound.Residual.String() != w.Residual {
			t.Errorf("share %d is %v %v, want %s %s", i, g.Kind, g.Bound, w.ID, w.Residual)
		}
		if diff := g.Share - w.Share; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("share %d = %v, want %v", i, g.Share, w.Share)
		}
	}
}
