package h2

import (
	"io"
	"net"
	"testing"
	"time"
)

// The server's connections keep what net/http needs of a TCP connection:
// bytes written arrive in order, and CloseWrite half-closes (the peer
// reads EOF and can still send).
func TestYieldConnWritesAndHalfCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	yl := yieldListener{ln}
	defer yl.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := yl.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	if _, ok := sc.(yieldConn); !ok {
		t.Fatalf("accepted %T, want yieldConn", sc)
	}
	for _, s := range []string{"one ", "two ", "three"} {
		if _, err := sc.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	cw, ok := sc.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("yieldConn has no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	peer.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(peer)
	if err != nil {
		t.Fatalf("reading to EOF: %v", err)
	}
	if string(got) != "one two three" {
		t.Fatalf("peer read %q", got)
	}
	// Half-closed, not closed: the peer can still send.
	if _, err := peer.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "back" {
		t.Fatalf("server read %q, %v after CloseWrite", buf, err)
	}
}
