package cli

import (
	"bytes"
	"net"
	"strings"
	"testing"
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
	if errw.Len() != 0 {
		t.Errorf("stderr = %q, want nothing (the error is already on stdout)", errw.String())
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
