package http1

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"
)

// deadlineConn is a net.Conn whose deadlines are no-ops; anything else
// panics (readHead must not write on the success path).
type deadlineConn struct {
	net.Conn
	deadlines int
}

func (c *deadlineConn) SetReadDeadline(time.Time) error { c.deadlines++; return nil }

// TestReadHeadAllocs pins readHead's success path at zero allocations,
// with the read-header timeout armed (first request on a connection) and
// not (a later one). The error target for errors.As used to escape on
// every call.
func TestReadHeadAllocs(t *testing.T) {
	s := &Server{fallback: &http.Server{ReadHeaderTimeout: DefaultReadHeaderTimeout}}
	raw := []byte("GET /a HTTP/1.1\r\nHost: hello\r\nAccept: */*\r\n\r\n")
	rd := bytes.NewReader(raw)
	br := bufio.NewReaderSize(rd, 4096)
	c := &deadlineConn{}
	for _, first := range []bool{true, false} {
		n := testing.AllocsPerRun(200, func() {
			rd.Reset(raw)
			br.Reset(rd)
			head, ok, err := s.readHead(c, br, first)
			if err != nil || !ok || len(head) != len(raw) {
				t.Fatalf("readHead(first=%v) = %q, %v, %v", first, head, ok, err)
			}
		})
		if n != 0 {
			t.Errorf("readHead(first=%v): %v allocations per call, want 0", first, n)
		}
	}
	if c.deadlines == 0 {
		t.Error("the first-request path never armed the read deadline")
	}
}
