package cli

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestParseRouterArgs(t *testing.T) {
	var errb bytes.Buffer
	s := IO{Err: &errb}
	f, err := parseRouterArgs(s, []string{"-validate", "-log.level=DEBUG", "-com.twitter.finagle.netty4.numWorkers=2", "/etc/linkerd.yaml"})
	if err != nil || !f.validate || f.level != slog.LevelDebug || f.path != "/etc/linkerd.yaml" {
		t.Errorf("got %+v, %v", f, err)
	}
	if !strings.Contains(errb.String(), "ignoring JVM Linkerd flag -com.twitter.finagle.netty4.numWorkers=2") {
		t.Errorf("no warning for the JVM flag: %q", errb.String())
	}
	f, err = parseRouterArgs(s, []string{"--log.level", "warning", "-"})
	if err != nil || f.level != slog.LevelWarn || f.path != "-" || f.validate {
		t.Errorf("got %+v, %v", f, err)
	}
	for _, bad := range [][]string{
		{"-bogus", "x.yaml"},
		{"a.yaml", "b.yaml"},
		{},
		{"-log.level=LOUD", "a.yaml"},
		{"a.yaml", "-log.level"},
	} {
		if _, err := parseRouterArgs(s, bad); err == nil {
			t.Errorf("%q: accepted; want an error", bad)
		}
	}
}

func TestRouterValidateFromStdin(t *testing.T) {
	var out, errb bytes.Buffer
	cfg := "routers:\n- protocol: http\n  dtab: /svc => /$/inet/127.0.0.1/1;\n  servers: [{port: 0}]\n"
	code := Main([]string{"router", "-validate", "-"}, strings.NewReader(cfg), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "valid") {
		t.Errorf("exit %d, out %q, err %q; want 0 and a confirmation", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = Main([]string{"router", "-validate", "-"}, strings.NewReader(cfg+"  bogusKey: 1\n"), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "<stdin>") || !strings.Contains(errb.String(), "bogusKey") {
		t.Errorf("exit %d, err %q; want a failure naming <stdin> and bogusKey", code, errb.String())
	}
}

// A linkerd.yaml given to namerd, or a namerd.yaml given to the router,
// is named for what it is instead of listing every key as unknown.
func TestWrongRoleConfig(t *testing.T) {
	linkerd := "routers:\n- protocol: http\n  servers: [{port: 0}]\n"
	namerd := "storage: {kind: io.l5d.inMemory}\ninterfaces:\n- kind: io.l5d.httpController\n"
	r := linnet(t, namerd, "router", "-validate", "-")
	if r.code != 1 || !strings.Contains(r.err, `<stdin> is a namerd.yaml (it has storage or interfaces, and no routers): run it with "linnet namerd"`) {
		t.Errorf("router with a namerd.yaml: %+v", r)
	}
	r = linnet(t, linkerd, "namerd", "-validate", "-")
	if r.code != 1 || !strings.Contains(r.err, `<stdin> is a linkerd.yaml (it has routers): run it with "linnet router"`) {
		t.Errorf("namerd with a linkerd.yaml: %+v", r)
	}
	linnet(t, namerd, "namerd", "-validate", "-").want(t, 0, "configuration is valid\n")
}
