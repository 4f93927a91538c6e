package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPort(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if p < 20000 || p >= 32000 {
			t.Fatalf("port %d outside 20000-31999", p)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		ln.Close()
	}
	if len(seen) != 20 {
		t.Fatalf("20 draws gave %d distinct ports; a process must never get a port twice", len(seen))
	}
}
