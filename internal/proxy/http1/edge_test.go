package http1

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
)

type unwrapWriter struct{ http.ResponseWriter }

func (u unwrapWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

type wrappedConn struct{ net.Conn }

func (w wrappedConn) NetConn() net.Conn { return w.Conn }

func TestFastWriterKeepsConnAcrossRequests(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	w := &fastWriter{h: make(http.Header), conn: c1}
	w.reset(bufio.NewWriter(c1), &http.Request{})
	if w.conn != c1 {
		t.Fatal("reset dropped the writer's connection; the edge headers could not find it on a keep-alive request")
	}
	if got := fastWriterOf(unwrapWriter{unwrapWriter{w}}); got != w {
		t.Errorf("fastWriterOf through two Unwrap wrappers = %p; want %p", got, w)
	}
	if got := fastWriterOf(unwrapWriter{nil}); got != nil {
		t.Errorf("fastWriterOf(non-fast writer) = %p; want nil", got)
	}
}

func TestTLSStateThroughWrappers(t *testing.T) {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	tc := tls.Server(c1, &tls.Config{})
	if _, ok := tlsState(wrappedConn{wrappedConn{tc}}); !ok {
		t.Error("tlsState did not find the tls.Conn under two NetConn wrappers")
	}
	if _, ok := tlsState(wrappedConn{c2}); ok {
		t.Error("tlsState found TLS on a plain connection")
	}
}

func TestMaxForwardsAndAddContext(t *testing.T) {
	for _, tc := range []struct {
		v      []string
		n      int
		ok     bool
		hasErr bool
	}{
		{nil, 0, false, false},
		{[]string{"0"}, 0, true, false},
		{[]string{" 7 "}, 7, true, false},
		{[]string{"-1"}, -1, true, true},
		{[]string{"many"}, 0, true, true},
	} {
		h := http.Header{}
		if tc.v != nil {
			h[headerMaxFwd] = tc.v
		}
		n, ok, err := maxForwards(h)
		if ok != tc.ok || (err != nil) != tc.hasErr || (err == nil && n != tc.n) {
			t.Errorf("maxForwards(%q) = %d, %v, %v; want %d, %v, error %v", tc.v, n, ok, err, tc.n, tc.ok, tc.hasErr)
		}
	}
	for v, want := range map[string]bool{"true": true, "TRUE": true, "1": true, "false": false, "yes": false, "": false} {
		if got := isTrue([]string{v}); got != want {
			t.Errorf("isTrue(%q) = %v; want %v", v, got, want)
		}
	}
}
