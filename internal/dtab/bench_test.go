package dtab

import (
	"fmt"
	"strings"
	"testing"
)

// benchDtab is a realistic 20-entry dtab: namer rewrites, wildcards,
// fall-backs, weighted unions and a comment.
var benchDtab = func() string {
	var b strings.Builder
	b.WriteString("# generated benchmark dtab\n")
	b.WriteString("/srv => /#/io.l5d.k8s/default/http;\n")
	b.WriteString("/host => /srv;\n")
	b.WriteString("/svc => /$/io.buoyant.http.domainToPathPfx/host;\n")
	for i := range 15 {
		fmt.Fprintf(&b, "/svc/service-%02d => 9 * /srv/service-%02d-v1 & 1 * /srv/service-%02d-v2 | /srv/fallback;\n", i, i, i)
	}
	b.WriteString("/svc/*/canary => /$/inet/127.0.0.1/8080 | ~")
	return b.String()
}()

func BenchmarkParseDtab20(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchDtab)))
	for b.Loop() {
		d, err := Parse(benchDtab)
		if err != nil || len(d) != 19 {
			b.Fatalf("Parse: %d entries, %v", len(d), err)
		}
	}
}

func BenchmarkLookup20(b *testing.B) {
	d := MustParse(benchDtab)
	d = append(d, MustParse("/x => /y")...) // 20 entries
	path := MustParsePath("/svc/service-07/api/v1")
	b.ReportAllocs()
	for b.Loop() {
		t := d.Lookup(path)
		if t.Kind != Alt {
			b.Fatalf("Lookup = %s", ShowTree(t))
		}
	}
}

func BenchmarkLookup20NoRest(b *testing.B) {
	d := MustParse(benchDtab)
	d = append(d, MustParse("/x => /y")...)
	path := MustParsePath("/svc/service-07")
	b.ReportAllocs()
	for b.Loop() {
		d.Lookup(path)
	}
}

func BenchmarkPathString(b *testing.B) {
	path := MustParsePath("/#/io.l5d.k8s/default/http/service-07/api/v1")
	b.ReportAllocs()
	for b.Loop() {
		_ = path.String()
	}
}

func BenchmarkPathStringEscaped(b *testing.B) {
	path := Path{"svc", "café au lait", "x"}
	b.ReportAllocs()
	for b.Loop() {
		_ = path.String()
	}
}

func BenchmarkDtabString20(b *testing.B) {
	d := MustParse(benchDtab)
	b.ReportAllocs()
	for b.Loop() {
		_ = d.String()
	}
}

func BenchmarkParsePath(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePath("/svc/service-07/api/v1"); err != nil {
			b.Fatal(err)
		}
	}
}
