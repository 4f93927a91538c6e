package http1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linnet-mesh/linnet/internal/dtab"
	"github.com/linnet-mesh/linnet/internal/proxy"
)

// FuzzIdentifiers runs every HTTP/1 identifier over requests built from
// arbitrary method, target, Host and header bytes (as the server would
// parse them): each yields either an error or a name under dstPrefix
// whose every element is non-empty and which prints and parses back to
// itself.
func FuzzIdentifiers(f *testing.F) {
	f.Add("GET", "/users/42?x=1", "www.hello.world", "/foo/bar", false)
	f.Add("POST", "/", "Hello.World:8080", "/a", false)
	f.Add("get", "//a//b/", "", "", true)
	f.Add("PUT", "http://other.host/p/q", "h", "not a path", false)
	f.Add("DELETE", "/%2F/%00/x", "[::1]:80", "/\\x2f", false)
	f.Add("OPTIONS", "*", "a b", "/#/io.l5d.fs/x", true)
	env := proxy.IdentifierEnv{Ctx: context.Background(), DstPrefix: dtab.Path{"svc"}}
	configs := map[string]proxy.IdentifierConfig{
		"header.token":      &HeaderTokenConfig{Header: "Host"},
		"header.token x":    &HeaderTokenConfig{Header: "x-svc"},
		"methodAndHost":     &MethodAndHostConfig{},
		"methodAndHost uri": &MethodAndHostConfig{HTTPURIInDst: true},
		"path":              &PathConfig{Segments: 1},
		"path 2 consume":    &PathConfig{Segments: 2, Consume: true},
		"header":            &HeaderConfig{Header: "l5d-name"},
		"header host":       &HeaderConfig{Header: "Host"},
		"static":            &StaticConfig{Path: "/static/name"},
	}
	ids := map[string]proxy.Identifier{}
	for name, c := range configs {
		id, err := c.NewIdentifier(env)
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		ids[name] = id
	}
	f.Fuzz(func(t *testing.T, method, target, host, header string, http10 bool) {
		proto := "HTTP/1.1"
		if http10 {
			proto = "HTTP/1.0"
		}
		head := method + " " + target + " " + proto + "\r\nHost: " + host + "\r\nL5d-Name: " + header +
			"\r\nX-Svc: " + header + "\r\n\r\n"
		for name, id := range ids {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
			if err != nil {
				return // not a request the server would pass on
			}
			p, err := id.Identify(r)
			if err != nil {
				continue
			}
			if !p.HasPrefix(env.DstPrefix) {
				t.Fatalf("%s: %q → %q: not under /svc", name, head, p)
			}
			for i, e := range p {
				if e == "" {
					t.Fatalf("%s: %q → %q: element %d is empty", name, head, p, i)
				}
			}
			back, err := dtab.ParsePath(p.String())
			if err != nil || !back.Equal(p) {
				t.Fatalf("%s: %q → %q prints as %q, which parses to %q, %v", name, head, p, p.String(), back, err)
			}
		}
	})
}

// memConn is an in-memory net.Conn: reads return the input and then EOF;
// writes are collected; Close is signalled on closed.
type memConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	out    bytes.Buffer
	once   sync.Once
	closed chan struct{}
}

func newMemConn(in []byte) *memConn {
	return &memConn{r: bytes.NewReader(in), closed: make(chan struct{})}
}

func (c *memConn) Read(b []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.Read(b)
}

func (c *memConn) Write(b []byte) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(b)
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *memConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4140} }
func (c *memConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }

func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeConn feeds arbitrary bytes, as one connection, through the
// fast server's accept loop (request-head reader, fast path and hand-off
// to net/http): it never panics or hangs (the connection is closed within
// a bound), the handler sees only parsed requests, and whatever the
// server writes is HTTP/1.x responses.
func FuzzServeConn(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\n",
		"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"\r\n\r\n",
		"GET / HTTP/9.9\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	var bad atomic.Pointer[string] // a request the handler should not have seen
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http passes the HTTP/2 preface on for h2c handlers to take.
		preface := r.Method == "PRI" && r.RequestURI == "*" && r.Proto == "HTTP/2.0"
		if r.Method == "" || r.URL == nil || r.ProtoMajor != 1 && !preface {
			msg := fmt.Sprintf("handler got an unparsed request: %q %v %q", r.Method, r.URL, r.Proto)
			bad.Store(&msg)
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	})
	s := NewServer(handler, &http.Server{ReadHeaderTimeout: time.Second, MaxHeaderBytes: 8 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}, nil)
	ln := newChanListener()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	f.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			f.Errorf("Serve: %v", err)
		}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		c := newMemConn(in)
		if !ln.push(c) {
			t.Fatal("listener closed")
		}
		select {
		case <-c.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection with input %q not closed after 10s; wrote %q", in, c.output())
		}
		if msg := bad.Swap(nil); msg != nil {
			t.Fatalf("input %q: %s", in, *msg)
		}
		out := c.output()
		if out == "" {
			return
		}
		if !strings.HasPrefix(out, "HTTP/1.1 ") && !strings.HasPrefix(out, "HTTP/1.0 ") {
			t.Fatalf("input %q: server wrote %q", in, out)
		}
		// The first response is the handler's, or net/http's refusal.
		code, _ := strconv.Atoi(out[9:min(12, len(out))])
		if code != 200 && (code < 400 || code > 431) && code != 501 && code != 505 {
			t.Fatalf("input %q: server answered %q", in, out)
		}
	})
}
