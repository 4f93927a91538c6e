package naming

import (
	"testing"

	"github.com/linnet-mesh/linnet/internal/dtab"
)

func TestStripTransformerPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"/%/io.l5d.port/4141/#/io.l5d.fs/web": "/#/io.l5d.fs/web",
		"/%/io.l5d.localhost/$/inet/h/1":      "/$/inet/h/1",
		"/#/io.l5d.fs/web":                    "/#/io.l5d.fs/web",
		"/%/no/marker":                        "/%/no/marker",
		"/":                                   "/",
	} {
		if got := StripTransformerPrefix(dtab.MustParsePath(in)).String(); got != want {
			t.Errorf("StripTransformerPrefix(%s) = %s, want %s", in, got, want)
		}
	}
}
