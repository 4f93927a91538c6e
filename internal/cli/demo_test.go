package cli

import (
	"strings"
	"testing"
)

func TestDemoFlagsCheck(t *testing.T) {
	good := func() demoFlags {
		var f demoFlags
		f.layout.Outgoing, f.layout.Incoming, f.layout.Admin = 4140, 4141, 9990
		f.layout.Namerd, f.layout.NamerdAdmin = 4180, 9991
		return f
	}
	if f := good(); f.check() != nil {
		t.Fatalf("defaults refused: %v", f.check())
	}
	cases := []struct {
		edit func(*demoFlags)
		want string
	}{
		{func(f *demoFlags) { f.layout.Outgoing = 0 }, "--outgoing: 0 is not a TCP port"},
		{func(f *demoFlags) { f.layout.Admin = 65536 }, "--admin: 65536 is not a TCP port"},
		{func(f *demoFlags) { f.layout.Namerd = 9990 }, "--admin and --namerd are both 9990"},
		{func(f *demoFlags) { f.layout.NamerdAdmin = 4141 }, "--incoming and --namerd-admin are both 4141"},
		{func(f *demoFlags) { f.appPorts[1] = 4140 }, "--outgoing and --world-v1-port are both 4140"},
		{func(f *demoFlags) { f.appPorts[0] = -1 }, "--hello-port: -1 is not a TCP port"},
	}
	for _, c := range cases {
		f := good()
		c.edit(&f)
		if err := f.check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("check() = %v; want %q", err, c.want)
		}
	}
	// Without namerd its ports are not used, so they may be anything.
	f := good()
	f.noNamerd, f.layout.Namerd, f.layout.NamerdAdmin = true, 9990, 0
	if err := f.check(); err != nil {
		t.Errorf("--no-namerd with unused namerd ports: %v", err)
	}
}
