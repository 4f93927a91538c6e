package cli

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A namerctl-style failure is printed once, on stdout, with exit 255;
// Main must not repeat it on stderr.
func TestReportedErrorIsPrintedOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	var out, errw bytes.Buffer
	code := Main([]string{"dtab", "get", "x", "--base-url", "http://" + addr}, strings.NewReader(""), &out, &errw)
	if code != 255 {
		t.Errorf("exit %d, want 255", code)
	}
	if n := strings.Count(out.String(), "connection refused"); n != 1 {
		t.Errorf("stdout mentions the failure %d times, want 1: %q", n, out.String())
	}
	// stderr says what to check, without repeating the error.
	if strings.Contains(errw.String(), "connection refused") || !strings.Contains(errw.String(), "cannot reach namerd at http://"+addr+" (from --base-url)") {
		t.Errorf("stderr = %q, want a hint and not the error again", errw.String())
	}
}

// Other failures keep the "linnet:" line on stderr.
func TestUnreportedErrorGoesToStderr(t *testing.T) {
	var out, errw bytes.Buffer
	code := Main([]string{"dtab", "eval", "--dtab", "/a => /b;;", "/a"}, strings.NewReader(""), &out, &errw)
	if code == 0 {
		t.Fatal("exit 0 for a malformed dtab")
	}
	if !strings.Contains(errw.String(), "linnet: invalid dtab: '/' expected but ';' found at '/a => /b;[;]'") {
		t.Errorf("stderr = %q, want the parser's message", errw.String())
	}
}

// Every command's --help answers "how do I use it" with an example, and
// shows only flags that apply to it.
func TestHelpHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "linnet" && c.Name() != "help" && c.Name() != "completion" && c.Parent().Name() != "completion" && c.Example == "" {
			t.Errorf("%q has no Example in its --help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRoot(IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}))

	for _, args := range [][]string{{"router", "--help"}, {"namerd", "-h"}, {"dtab", "eval", "--help"}, {"check", "--help"}} {
		var out, errw bytes.Buffer
		if code := Main(args, strings.NewReader(""), &out, &errw); code != 0 || !strings.Contains(out.String(), "Example") {
			t.Errorf("%q: exit %d, stdout %q", args, code, out.String())
		}
		if args[0] == "dtab" && strings.Contains(out.String(), "--base-url") {
			t.Errorf("dtab eval --help shows --base-url, which it does not use:\n%s", out.String())
		}
	}
}
