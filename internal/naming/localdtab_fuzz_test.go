package naming

import (
	"strings"
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

// FuzzLocalDtab: arbitrary l5d-ctx-dtab and l5d-dtab header values give
// either an error naming the header it came from, or a dtab that is the
// context entries followed by the user entries and that prints and
// parses back to itself.
func FuzzLocalDtab(f *testing.F) {
	for _, s := range [][2]string{
		{"/svc=>/#/io.l5d.fs", "/svc/foo=>/svc/bar"},
		{"", ""},
		{"/a=>/b;/c=>~", "/x=>!|$"},
		{"/a=>", "/b=>/c"},
		{"/svc=>/c", "/b=>/c;;"},
		{"/svc/*=>0.5*/a & 0.5*/b", "# comment\n/x=>/y"},
		{"/\\x2f=>/y", "/svc=>/\\xzz"},
	} {
		f.Add(s[0], s[1], true)
	}
	f.Fuzz(func(t *testing.T, ctxValue, userValue string, both bool) {
		ctxValues, userValues := []string{ctxValue}, []string{userValue}
		if both {
			ctxValues = append(ctxValues, userValue)
			userValues = append(userValues, ctxValue)
		}
		d, source, err := LocalDtab(ctxValues, userValues)
		if err != nil {
			if source != HeaderCtxDtab && source != HeaderUserDtab {
				t.Fatalf("error %v from source %q", err, source)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if source != "" {
			t.Fatalf("source %q without an error", source)
		}
		var want dtab.Dtab
		for _, v := range append(ctxValues, userValues...) {
			p, err := dtab.Parse(v)
			if err != nil {
				t.Fatalf("LocalDtab accepted %q, which does not parse: %v", v, err)
			}
			want = append(want, p...)
		}
		if !d.Equal(want) {
			t.Fatalf("LocalDtab(%q, %q) = %s, want %s", ctxValues, userValues, d, want)
		}
		back, err := dtab.Parse(d.String())
		if err != nil || !back.Equal(d) {
			t.Fatalf("LocalDtab result %s does not parse back: %s, %v", d, back, err)
		}
		if strings.ContainsAny(d.String(), "\r\n") {
			t.Fatalf("LocalDtab result %q prints with a line break, unusable as a header", d.String())
		}
	})
}
