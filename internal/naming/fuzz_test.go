package naming

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/watch"
)

// FuzzBind binds and explains arbitrary (dtab, path) pairs: nothing may
// panic or hang, results are never pending (every namer here answers at
// once), and the delegator's JSON must parse.
func FuzzBind(f *testing.F) {
	for _, s := range [][2]string{
		{"/svc => /#/io.l5d.fs", "/svc/world"},
		{"/svc => /#/io.l5d.fs; /svc/world => /#/io.l5d.fs/missing | /$/nil", "/svc/world"},
		{"/svc => 3 * /#/io.l5d.fs/world & /#/broken/x & $", "/svc"},
		{"/svc => /$/io.buoyant.http.domainToPathPfx/host; /host/com/example => /$/inet/127.1/80", "/svc/example.com"},
		{"/a => /b; /b => /a", "/a"},
		{"/ => /#/io.l5d.fs", "/world"},
		{"/svc => /$/io.buoyant.hostportPfx/ip; /ip => /$/inet", "/svc/127.0.0.1:80"},
	} {
		f.Add(s[0], s[1])
	}
	fs := NewStaticNamer(fsPrefix, map[string][]Address{"world": {{Host: "10.0.0.1", Port: 80, Weight: 1}}})
	broken := NewFailingNamer(dtab.MustParsePath("/#/broken"))
	in := NewInterpreter([]MountedNamer{{Prefix: fsPrefix, Namer: fs}, {Prefix: broken.Prefix(), Namer: broken}},
		WithHostResolver(func(ctx context.Context, host string) ([]netipAddr, error) { return nil, errNoDNS }))
	f.Fuzz(func(t *testing.T, dtabText, pathText string) {
		d, err := dtab.Parse(dtabText)
		if err != nil {
			return
		}
		p, err := dtab.ParsePath(pathText)
		if err != nil {
			return
		}
		if a := in.Bind(d, p).Get(); a.State == watch.Pending {
			t.Fatalf("binding %q through %q is pending", pathText, dtabText)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := Delegate(ctx, in, d, p)
		if err != nil {
			return
		}
		if !json.Valid(MarshalDelegateJSON(n)) {
			t.Fatalf("invalid delegate JSON for %q through %q", pathText, dtabText)
		}
	})
}

type netipAddr = netip.Addr

var errNoDNS = errors.New("no DNS in this test")
