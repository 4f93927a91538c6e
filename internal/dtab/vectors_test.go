package dtab

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// vectorsFile is the shared conformance file (format in spec/dtab.md §1).
const vectorsFile = "../naming/testdata/dtab-vectors.json"

type vector struct {
	Name   string          `json:"name"`
	Kind   string          `json:"kind"`
	Dtab   string          `json:"dtab"`
	Tree   string          `json:"tree"`
	Expect json.RawMessage `json:"expect"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	var doc struct {
		Version int      `json:"version"`
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decoding %s: %v", vectorsFile, err)
	}
	if doc.Version != 1 {
		t.Fatalf("vectors version %d, want 1", doc.Version)
	}
	return doc.Vectors
}

// TestVectorsShow runs every "show" vector: parse the dtab, print it, and
// compare with the expected text or the exact Linkerd error message.
func TestVectorsShow(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t) {
		if v.Kind != "show" {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			var want struct {
				Show       *string `json:"show"`
				ParseError bool    `json:"parse_error"`
				Message    string  `json:"message"`
			}
			if err := json.Unmarshal(v.Expect, &want); err != nil {
				t.Fatal(err)
			}
			d, err := Parse(v.Dtab)
			if want.ParseError {
				if err == nil {
					t.Fatalf("Parse(%q) = %q, want error %q", v.Dtab, d, want.Message)
				}
				if _, ok := err.(*ParseError); !ok {
					t.Errorf("error type %T, want *ParseError", err)
				}
				if err.Error() != want.Message {
					t.Errorf("Parse(%q) error\n got %s\nwant %s", v.Dtab, err, want.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", v.Dtab, err)
			}
			if want.Show == nil {
				t.Fatalf("vector has neither show nor parse_error")
			}
			if got := d.String(); got != *want.Show {
				t.Errorf("Parse(%q).String()\n got %q\nwant %q", v.Dtab, got, *want.Show)
			}
			d2, err := Parse(*want.Show)
			if err != nil {
				t.Fatalf("reparse %q: %v", *want.Show, err)
			}
			if got := d2.String(); got != *want.Show {
				t.Errorf("reparse printed %q, want %q", got, *want.Show)
			}
		})
	}
	if n == 0 {
		t.Fatal("no show vectors found")
	}
}

// TestVectorsTree runs every "tree" vector: simplify and evaluate.
func TestVectorsTree(t *testing.T) {
	n := 0
	for _, v := range loadVectors(t) {
		if v.Kind != "tree" {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			var want struct {
				Simplified string    `json:"simplified"`
				Eval       *[]string `json:"eval"`
			}
			if err := json.Unmarshal(v.Expect, &want); err != nil {
				t.Fatal(err)
			}
			tree, err := ParseTree(v.Tree)
			if err != nil {
				t.Fatalf("ParseTree(%q): %v", v.Tree, err)
			}
			s := Simplify(tree)
			if got := ShowTree(s); got != want.Simplified {
				t.Errorf("simplified %q, want %q", got, want.Simplified)
			}
			for _, in := range []NameTree{tree, s} {
				got := evalStrings(in)
				if !slices.Equal(derefOrNil(got), derefOrNil(want.Eval)) || (got == nil) != (want.Eval == nil) {
					t.Errorf("eval(%s) = %s, want %s", ShowTree(in), showEval(got), showEval(want.Eval))
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no tree vectors found")
	}
}

// evalStrings evaluates t and returns the printed leaves sorted byte-wise
// and deduplicated, or nil when negative.
func evalStrings(t NameTree) *[]string {
	leaves, ok := Eval(t)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(leaves))
	for _, l := range leaves {
		out = append(out, l.String())
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return &out
}

func derefOrNil(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}

func showEval(p *[]string) string {
	if p == nil {
		return "null"
	}
	b, _ := json.Marshal(*p)
	return string(b)
}
